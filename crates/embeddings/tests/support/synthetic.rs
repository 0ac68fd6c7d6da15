//! A synthetic cross-encoder for tests and the rerank bench, because no real one can be had
//! offline: all-MiniLM-L6-v2's encoder (from `default_model_dir()`) re-keyed under `bert.`,
//! with a seeded pooler and a one-label classifier, written as a Hugging Face
//! `BertForSequenceClassification` directory. It has the architecture and the size of
//! `cross-encoder/ms-marco-MiniLM-L-6-v2` (6 layers, 384 wide), so its latency is
//! representative; its scores mean nothing for relevance.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};

/// Writes the synthetic model into `dir`; without `classifier`, the classifier's tensors are
/// left out (a directory that is not a cross-encoder).
pub fn write_cross_encoder(dir: &Path, classifier: bool) -> Result<(), Box<dyn std::error::Error>> {
    let source = rag_embeddings::default_model_dir();
    let device = Device::Cpu;
    let minilm = candle_core::safetensors::load(source.join("model.safetensors"), &device)?;
    let mut tensors: HashMap<String, Tensor> = minilm
        .into_iter()
        .filter(|(name, _)| !name.starts_with("pooler."))
        .map(|(name, tensor)| (format!("bert.{name}"), tensor))
        .collect();
    let hidden = 384;
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut seeded = |shape: &[usize], scale: f32| -> candle_core::Result<Tensor> {
        let count = shape.iter().product();
        let values: Vec<f32> = (0..count)
            .map(|_| {
                // xorshift64*: uniform in [-scale, scale).
                seed ^= seed >> 12;
                seed ^= seed << 25;
                seed ^= seed >> 27;
                let unit =
                    (seed.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40) as f32 / (1u64 << 24) as f32;
                (unit * 2.0 - 1.0) * scale
            })
            .collect();
        Tensor::from_vec(values, shape, &device)
    };
    tensors.insert(
        "bert.pooler.dense.weight".into(),
        seeded(&[hidden, hidden], 0.1)?,
    );
    tensors.insert("bert.pooler.dense.bias".into(), seeded(&[hidden], 0.1)?);
    if classifier {
        tensors.insert("classifier.weight".into(), seeded(&[1, hidden], 0.5)?);
        tensors.insert("classifier.bias".into(), seeded(&[1], 0.5)?);
    }
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors"))?;
    std::fs::copy(source.join("tokenizer.json"), dir.join("tokenizer.json"))?;
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(source.join("config.json"))?)?;
    config["architectures"] = serde_json::json!(["BertForSequenceClassification"]);
    config["num_labels"] = 1.into();
    std::fs::write(dir.join("config.json"), serde_json::to_vec_pretty(&config)?)?;
    Ok(())
}
