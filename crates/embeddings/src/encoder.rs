//! The BERT encoder's forward pass, written for inference on the CPU.
//!
//! It computes what `candle_transformers::models::bert::BertModel` computes (the same
//! embeddings, the same post-norm layers, GELU with `erf`), with the work arranged for a CPU:
//!
//! - the query, key and value projections are one product with a fused `3h × h` weight, and
//!   the attention scale `1/√d` is folded into the query rows at load time (one product
//!   instead of three, and no pass over the `heads × tokens²` scores to scale them);
//! - every projection multiplies a 2-D `(rows × tokens, h)` matrix, so a batch is one gemm;
//! - the softmax is candle's fused last-dimension kernel (one parallel pass) rather than the
//!   five element-wise passes of the generic one;
//! - the attention mask is added only when the batch has padding: a single query, the
//!   query path's case, has none;
//! - GELU is computed in place with an `erf` the compiler vectorises (`gelu.rs`).
//!
//! `tests/reference.rs` checks the result against sentence-transformers.

use candle_core::{DType, Module as _, Tensor};
use candle_nn::{Embedding, LayerNorm, Linear, VarBuilder};
use candle_transformers::models::bert::{Config, HiddenAct};

use crate::bert::column_major;
use crate::gelu::gelu_erf_in_place;

/// A BERT encoder: embeddings and layers, no pooler.
pub(crate) struct BertEncoder {
    word_embeddings: Embedding,
    position_embeddings: Tensor,
    token_type_embeddings: Embedding,
    embeddings_norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    head_size: usize,
    hidden_act: HiddenAct,
}

struct Layer {
    /// Query (pre-scaled by `1/√d`), key and value projections, stacked.
    qkv: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

impl BertEncoder {
    /// Builds the encoder from `vb` holding `embeddings.*` and `encoder.layer.N.*` (as
    /// Hugging Face names a `BertModel`'s tensors; pass `vb.pp("bert")` for a model with a
    /// head).
    pub fn load(vb: VarBuilder, config: &Config) -> candle_core::Result<Self> {
        let hidden = config.hidden_size;
        let heads = config.num_attention_heads;
        if heads == 0 || !hidden.is_multiple_of(heads) {
            candle_core::bail!("hidden_size {hidden} is not a multiple of {heads} heads");
        }
        let head_size = hidden / heads;
        let embeddings = vb.pp("embeddings");
        let layers = (0..config.num_hidden_layers)
            .map(|i| Layer::load(vb.pp(format!("encoder.layer.{i}")), config, head_size))
            .collect::<candle_core::Result<_>>()?;
        Ok(Self {
            word_embeddings: candle_nn::embedding(
                config.vocab_size,
                hidden,
                embeddings.pp("word_embeddings"),
            )?,
            position_embeddings: embeddings.get(
                (config.max_position_embeddings, hidden),
                "position_embeddings.weight",
            )?,
            token_type_embeddings: candle_nn::embedding(
                config.type_vocab_size,
                hidden,
                embeddings.pp("token_type_embeddings"),
            )?,
            embeddings_norm: layer_norm(embeddings.pp("LayerNorm"), config)?,
            layers,
            heads,
            head_size,
            hidden_act: config.hidden_act,
        })
    }

    /// The last layer's hidden states (`rows × tokens × h`) of `ids` and `type_ids`
    /// (`rows × tokens`, u32) with `mask` (`rows × tokens`, 1 for a real token, 0 for
    /// padding).
    pub fn forward(
        &self,
        ids: &Tensor,
        type_ids: &Tensor,
        mask: &Tensor,
    ) -> candle_core::Result<Tensor> {
        let (rows, tokens) = ids.dims2()?;
        let hidden = self.heads * self.head_size;
        if tokens > self.position_embeddings.dim(0)? {
            candle_core::bail!(
                "{tokens} tokens is more than the model's {} positions",
                self.position_embeddings.dim(0)?
            );
        }
        let words = self.word_embeddings.forward(&ids.flatten_all()?)?;
        let types = self
            .token_type_embeddings
            .forward(&type_ids.flatten_all()?)?;
        let positions = self.position_embeddings.narrow(0, 0, tokens)?;
        let x = (words + types)?
            .reshape((rows, tokens, hidden))?
            .broadcast_add(&positions)?
            .reshape((rows * tokens, hidden))?;
        let mut x = self.embeddings_norm.forward(&x)?;

        let mask = mask.to_dtype(DType::F32)?;
        let padded = mask.min_all()?.to_scalar::<f32>()? < 1.0;
        // Added to the scores: 0 for a real token, the lowest f32 for padding (as
        // Hugging Face does), so padding gets no attention.
        let mask_bias = if padded {
            Some(((1.0 - mask)? * f64::from(f32::MIN))?.reshape((rows, 1, 1, tokens))?)
        } else {
            None
        };
        for layer in &self.layers {
            x = layer.forward(&x, rows, tokens, self, mask_bias.as_ref())?;
        }
        x.reshape((rows, tokens, hidden))
    }
}

impl Layer {
    fn load(vb: VarBuilder, config: &Config, head_size: usize) -> candle_core::Result<Self> {
        let h = config.hidden_size;
        let attention = vb.pp("attention");
        let projection = |name: &str| -> candle_core::Result<(Tensor, Tensor)> {
            let vb = attention.pp("self").pp(name);
            Ok((vb.get((h, h), "weight")?, vb.get(h, "bias")?))
        };
        let (query_w, query_b) = projection("query")?;
        let (key_w, key_b) = projection("key")?;
        let (value_w, value_b) = projection("value")?;
        let scale = 1.0 / (head_size as f64).sqrt();
        let qkv_w = Tensor::cat(&[(query_w * scale)?, key_w, value_w], 0)?;
        let qkv_b = Tensor::cat(&[(query_b * scale)?, key_b, value_b], 0)?;
        Ok(Self {
            qkv: Linear::new(column_major(&qkv_w)?, Some(qkv_b)),
            attention_out: candle_nn::linear(h, h, attention.pp("output.dense"))?,
            attention_norm: layer_norm(attention.pp("output.LayerNorm"), config)?,
            intermediate: candle_nn::linear(
                h,
                config.intermediate_size,
                vb.pp("intermediate.dense"),
            )?,
            output: candle_nn::linear(config.intermediate_size, h, vb.pp("output.dense"))?,
            output_norm: layer_norm(vb.pp("output.LayerNorm"), config)?,
        })
    }

    /// `x` is `(rows × tokens, h)`; so is the result.
    fn forward(
        &self,
        x: &Tensor,
        rows: usize,
        tokens: usize,
        encoder: &BertEncoder,
        mask_bias: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let (heads, head_size) = (encoder.heads, encoder.head_size);
        let hidden = heads * head_size;
        // (rows × tokens, 3h) → (3, rows, heads, tokens, d)
        let qkv = self
            .qkv
            .forward(x)?
            .reshape((rows, tokens, 3, heads, head_size))?
            .permute((2, 0, 3, 1, 4))?
            .contiguous()?;
        let (q, k, v) = (qkv.get(0)?, qkv.get(1)?, qkv.get(2)?);
        let scores = q.matmul(&k.t()?)?;
        let scores = match mask_bias {
            Some(bias) => scores.broadcast_add(bias)?,
            None => scores,
        };
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let context = probs
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((rows * tokens, hidden))?;
        let attended = self
            .attention_norm
            .forward(&(self.attention_out.forward(&context)? + x)?)?;
        let intermediate = self.intermediate.forward(&attended)?;
        let activated = match encoder.hidden_act {
            // `intermediate` is this pass's own fresh tensor: overwriting it is safe.
            HiddenAct::Gelu => {
                gelu_erf_in_place(&intermediate)?;
                intermediate
            }
            HiddenAct::GeluApproximate => intermediate.gelu()?,
            HiddenAct::Relu => intermediate.relu()?,
        };
        self.output_norm
            .forward(&(self.output.forward(&activated)? + attended)?)
    }
}

fn layer_norm(vb: VarBuilder, config: &Config) -> candle_core::Result<LayerNorm> {
    candle_nn::layer_norm(config.hidden_size, config.layer_norm_eps, vb)
}
