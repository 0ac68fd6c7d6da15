//! A model that runs in this process on the CPU ([`LocalLlm`]): offline, no per-token cost.
//!
//! A llama-architecture GGUF file (SmolLM2-135M-Instruct, Q4_1, by default: `make llm`)
//! with candle's quantized llama; the tokenizer comes from the file's metadata
//! ([`GgufTokenizer`]), the prompt is ChatML. Greedy at temperature 0, else top-k/top-p
//! sampling with a fixed seed.
//!
//! One set of weights per file per process ([`LocalLlm::new`] shares them), and one answer
//! at a time: on two cores a second concurrent forward pass only slows both down. Callers
//! queue for the model; past `max_waiting` waiting callers a call is refused at once as
//! [`GenerationError::Unavailable`]. The work runs on a blocking thread and sends text
//! through a bounded channel; when the stream is dropped (the client went away, a timeout)
//! the thread stops at its next token, or between two blocks of the prompt, and the model
//! is free for the next caller. A panic inside the model is caught and becomes an error of
//! that call (the weights are loaded again for the next).
//!
//! The window (`context_tokens`, prompt and answer together) is at most
//! [`MAX_CONTEXT_TOKENS`], the positions candle's rotary tables cover. A prompt that does not
//! fit loses the end of its passages ([`GgufTokenizer::chat_prompt`]); it never fails.

mod tokenizer;

use std::fs::File;
use std::io::{BufReader, Cursor};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant as StdInstant};

use candle_core::quantized::{GgmlDType, QTensor, gguf_file};
use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use candle_transformers::models::quantized_llama::{self, ModelWeights};
use futures::StreamExt;
use tokio::sync::{OwnedMutexGuard, OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Instant;

pub use tokenizer::{ChatPrompt, GgufTokenizer, TextStream};

use crate::{
    GenerationError, GenerationEvent, GenerationRequest, GenerationStream, GenerationUsage,
    Generator, guard_stream,
};

/// Environment variable naming the GGUF file when the configuration does not.
pub const LLM_PATH_ENV: &str = "RAG_LLM_PATH";

/// Where `scripts/fetch-llm.sh` puts the model, relative to the workspace root.
pub const DEFAULT_LLM_FILE: &str =
    ".cache/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf";

/// The longest window: candle's quantized llama precomputes rotary embeddings for this many
/// positions.
pub const MAX_CONTEXT_TOKENS: usize = quantized_llama::MAX_SEQ_LEN;

/// The shortest window worth configuring.
pub const MIN_CONTEXT_TOKENS: usize = 256;

/// Most callers that may wait for the model.
pub const MAX_WAITING_LIMIT: usize = 1024;

/// Tokens of the prompt fed to the model per forward pass: bounds the attention matrix
/// (heads × block × window) and lets a cancelled call stop between blocks.
const PREFILL_BLOCK: usize = 256;

/// Text deltas buffered between the model's thread and the caller.
const CHANNEL_CAPACITY: usize = 32;

/// Only the answer's own last tokens are penalised for repetition: quoting the passages is
/// what a grounded answer does.
const REPEAT_LAST_N: usize = 64;

/// Sampling above temperature 0.
const TOP_K: usize = 50;
const TOP_P: f64 = 0.9;

/// The GGUF file: `$RAG_LLM_PATH` if set (and not empty), else [`DEFAULT_LLM_FILE`] under the
/// workspace root (the first directory up from the current one holding `Cargo.lock` or
/// `.git`; else this crate's `../..` as compiled). Deployments should set the path.
pub fn default_llm_path() -> PathBuf {
    if let Some(path) = std::env::var_os(LLM_PATH_ENV).filter(|v| !v.is_empty()) {
        return PathBuf::from(path);
    }
    let cwd = std::env::current_dir().ok();
    cwd.as_deref()
        .and_then(|cwd| {
            cwd.ancestors()
                .find(|dir| dir.join("Cargo.lock").is_file() || dir.join(".git").exists())
        })
        .map(Path::to_path_buf)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .join(DEFAULT_LLM_FILE)
}

/// How a [`LocalLlm`] runs.
#[derive(Clone, Debug, PartialEq)]
pub struct LocalOptions {
    /// The `.gguf` file.
    pub model_path: PathBuf,
    /// The id on answers and for pricing; `None`: the file name without `.gguf`.
    pub model_id: Option<String>,
    /// Tokens of prompt and answer together, [`MIN_CONTEXT_TOKENS`] to
    /// [`MAX_CONTEXT_TOKENS`]. The prompt gets what the answer's `max_output_tokens` leaves,
    /// and at least half.
    pub context_tokens: usize,
    /// Callers that may wait while the model answers another; one more is refused.
    pub max_waiting: usize,
    /// Until the first token (waiting for the model and reading the prompt included), then
    /// between two tokens.
    pub timeout: Duration,
    /// The sampler's seed (temperature above 0): the same prompt gives the same answer.
    pub seed: u64,
    /// Logits of tokens among the answer's last 64 are divided by this (1: off).
    pub repeat_penalty: f32,
}

impl Default for LocalOptions {
    fn default() -> Self {
        Self {
            model_path: default_llm_path(),
            model_id: None,
            context_tokens: 2048,
            max_waiting: 4,
            timeout: Duration::from_secs(60),
            seed: 0,
            repeat_penalty: 1.1,
        }
    }
}

/// A GGUF model on this process's CPU. Cheap to make more than once for one file: the
/// weights and the turn-taking are shared.
pub struct LocalLlm {
    engine: Arc<Engine>,
    options: LocalOptions,
    model_id: String,
    /// One permit per caller running or waiting: `max_waiting + 1`.
    slots: Arc<Semaphore>,
}

impl std::fmt::Debug for LocalLlm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalLlm")
            .field("model_id", &self.model_id)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl LocalLlm {
    /// Checks the options and the file (a GGUF of the llama architecture, with a byte-level
    /// BPE tokenizer, all tensors inside the file) and builds the tokenizer; the weights are
    /// loaded on a blocking thread, at once when called inside a Tokio runtime, else by the
    /// first call. Errors are [`GenerationError::Rejected`], naming the file.
    pub fn new(options: LocalOptions) -> Result<Self, GenerationError> {
        if !(MIN_CONTEXT_TOKENS..=MAX_CONTEXT_TOKENS).contains(&options.context_tokens) {
            return Err(GenerationError::Rejected(format!(
                "local model context_tokens must be {MIN_CONTEXT_TOKENS} to {MAX_CONTEXT_TOKENS}"
            )));
        }
        if options.max_waiting > MAX_WAITING_LIMIT || options.timeout.is_zero() {
            return Err(GenerationError::Rejected(format!(
                "local model max_waiting must be at most {MAX_WAITING_LIMIT} and timeout positive"
            )));
        }
        if !(options.repeat_penalty.is_finite() && (1.0..=2.0).contains(&options.repeat_penalty)) {
            return Err(GenerationError::Rejected(
                "local model repeat_penalty must be in [1, 2]".into(),
            ));
        }
        let engine = Engine::shared(&options.model_path)?;
        let model_id = match &options.model_id {
            Some(id) if !id.trim().is_empty() => id.clone(),
            _ => options
                .model_path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "local".into()),
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current()
            && !engine.warming.swap(true, Ordering::SeqCst)
        {
            let engine = engine.clone();
            runtime.spawn(async move {
                if let Err(e) = engine.warm_up().await {
                    tracing::warn!(error = %e, "the local model could not be loaded");
                }
            });
        }
        Ok(Self {
            engine,
            slots: Arc::new(Semaphore::new(options.max_waiting.saturating_add(1))),
            options,
            model_id,
        })
    }

    /// Loads the weights now if they are not yet (waits for a load in progress).
    pub async fn warm_up(&self) -> Result<(), GenerationError> {
        self.engine.warm_up().await
    }

    /// The model's tokenizer.
    pub fn tokenizer(&self) -> &GgufTokenizer {
        &self.engine.tokenizer
    }

    /// The options it was made with.
    pub fn options(&self) -> &LocalOptions {
        &self.options
    }

    fn what(&self) -> String {
        format!("local model {}", self.model_id)
    }
}

#[async_trait::async_trait]
impl Generator for LocalLlm {
    fn model(&self) -> &str {
        &self.model_id
    }

    #[tracing::instrument(skip_all, fields(model = %self.model_id))]
    async fn generate(
        &self,
        request: GenerationRequest,
    ) -> Result<GenerationStream, GenerationError> {
        let deadline = Instant::now() + self.options.timeout;
        let what = self.what();
        let permit = self.slots.clone().try_acquire_owned().map_err(|_| {
            GenerationError::Unavailable(format!(
                "{what}: busy ({} callers already waiting for it)",
                self.options.max_waiting
            ))
        })?;
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let job = Job {
            request,
            model_id: self.model_id.clone(),
            what: what.clone(),
            context_tokens: self.options.context_tokens,
            seed: self.options.seed,
            repeat_penalty: self.options.repeat_penalty,
            tx,
            _permit: permit,
        };
        let engine = self.engine.clone();
        // Waiting for the model happens inside the stream: the first-token deadline covers
        // it, and dropping the stream leaves the queue.
        let start = async move {
            let weights = engine.weights.clone().lock_owned().await;
            // Detached: the job ends when it is done or its receiver is gone.
            drop(tokio::task::spawn_blocking(move || {
                work(&engine, weights, job);
            }));
            rx
        };
        let raw = futures::stream::once(start).flat_map(|rx| {
            futures::stream::unfold(rx, |mut rx| async move {
                let item = rx.recv().await?;
                Some((item, rx))
            })
        });
        guard_stream(raw, deadline, self.options.timeout, what).await
    }
}

/// The weights of one file and its tokenizer, shared by every [`LocalLlm`] of the file in
/// the process; the lock is the queue.
struct Engine {
    path: PathBuf,
    tokenizer: GgufTokenizer,
    /// `llama.context_length`, capped at [`MAX_CONTEXT_TOKENS`].
    trained_context: usize,
    weights: Arc<tokio::sync::Mutex<Option<ModelWeights>>>,
    warming: AtomicBool,
}

type Registry = Mutex<Vec<(PathBuf, Weak<Engine>)>>;

impl Engine {
    /// The engine of `path` in this process, opened if none is.
    fn shared(path: &Path) -> Result<Arc<Self>, GenerationError> {
        static ENGINES: OnceLock<Registry> = OnceLock::new();
        let canonical = path.canonicalize().map_err(|e| {
            GenerationError::Rejected(format!(
                "local model file {}: {e}; run `make llm` (scripts/fetch-llm.sh) or set model_path / {LLM_PATH_ENV}",
                path.display()
            ))
        })?;
        let registry = ENGINES.get_or_init(Registry::default);
        let mut engines = registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        engines.retain(|(_, engine)| engine.strong_count() > 0);
        if let Some(engine) = engines
            .iter()
            .find(|(p, _)| *p == canonical)
            .and_then(|(_, e)| e.upgrade())
        {
            return Ok(engine);
        }
        let engine = Arc::new(Self::open(canonical.clone())?);
        engines.push((canonical, Arc::downgrade(&engine)));
        Ok(engine)
    }

    fn open(path: PathBuf) -> Result<Self, GenerationError> {
        let started = StdInstant::now();
        let reject = |reason: String| {
            GenerationError::Rejected(format!("local model file {}: {reason}", path.display()))
        };
        let (content, file_size) = read_header(&path).map_err(reject)?;
        let architecture = content
            .metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        if architecture != "llama" {
            return Err(reject(format!(
                "architecture {architecture:?}; only \"llama\" GGUF models (SmolLM2, Llama) are supported"
            )));
        }
        for name in [
            "token_embd.weight",
            "output_norm.weight",
            "blk.0.attn_q.weight",
        ] {
            if !content.tensor_infos.contains_key(name) {
                return Err(reject(format!("no tensor {name}")));
            }
        }
        for (name, info) in &content.tensor_infos {
            let bytes = (info.shape.elem_count() / info.ggml_dtype.block_size().max(1))
                .checked_mul(info.ggml_dtype.type_size())
                .and_then(|b| u64::try_from(b).ok())
                .unwrap_or(u64::MAX);
            let end = content
                .tensor_data_offset
                .saturating_add(info.offset)
                .saturating_add(bytes);
            if end > file_size {
                return Err(reject(format!(
                    "tensor {name} ends past the end of the file (truncated download?)"
                )));
            }
        }
        let trained_context = content
            .metadata
            .get("llama.context_length")
            .and_then(|v| v.to_u32().ok())
            .and_then(|v| usize::try_from(v).ok())
            .unwrap_or(MAX_CONTEXT_TOKENS)
            .min(MAX_CONTEXT_TOKENS);
        let tokenizer = GgufTokenizer::from_metadata(&content.metadata).map_err(reject)?;
        tracing::info!(
            path = %path.display(),
            vocab = tokenizer.vocab_size(),
            tensors = content.tensor_infos.len(),
            elapsed_ms = started.elapsed().as_millis(),
            "local model file checked"
        );
        Ok(Self {
            path,
            tokenizer,
            trained_context,
            weights: Arc::new(tokio::sync::Mutex::new(None)),
            warming: AtomicBool::new(false),
        })
    }

    /// Reads the weights (blocking: ~100 MB, a dequantized embedding matrix).
    fn load_weights(&self) -> Result<ModelWeights, GenerationError> {
        let started = StdInstant::now();
        let fail = |reason: String| {
            GenerationError::Unavailable(format!(
                "loading the local model {}: {reason}",
                self.path.display()
            ))
        };
        let file = File::open(&self.path).map_err(|e| fail(e.to_string()))?;
        let mut reader = BufReader::new(file);
        let content = gguf_file::Content::read(&mut reader).map_err(|e| fail(e.to_string()))?;
        let requantize = content
            .tensor_infos
            .values()
            .any(|info| scalar_only(info.ggml_dtype));
        let model = if requantize {
            let mut file = requantized(&content, &mut reader).map_err(|e| fail(e.to_string()))?;
            let content = gguf_file::Content::read(&mut file).map_err(|e| fail(e.to_string()))?;
            ModelWeights::from_gguf(content, &mut file, &Device::Cpu)
        } else {
            ModelWeights::from_gguf(content, &mut reader, &Device::Cpu)
        }
        .map_err(|e| fail(e.to_string()))?;
        tracing::info!(
            path = %self.path.display(),
            requantized = requantize,
            elapsed_ms = started.elapsed().as_millis(),
            "local model loaded"
        );
        Ok(model)
    }

    async fn warm_up(self: &Arc<Self>) -> Result<(), GenerationError> {
        let mut weights = self.weights.clone().lock_owned().await;
        if weights.is_some() {
            return Ok(());
        }
        let engine = self.clone();
        tokio::task::spawn_blocking(move || {
            let loaded =
                catch_panic(|| engine.load_weights()).map_err(|failure| match failure {
                    Failure::Error(e) => e,
                    Failure::Panic(message) => GenerationError::Unavailable(format!(
                        "loading the local model panicked: {message}"
                    )),
                })?;
            *weights = Some(loaded);
            Ok(())
        })
        .await
        .map_err(|e| GenerationError::Unavailable(format!("loading the local model: {e}")))?
    }
}

/// Quantizations candle multiplies with scalar code on x86 (it has AVX2 kernels for Q4_0,
/// Q8_0 and the k-quants only): ~10x slower per token than Q8_0 there.
fn scalar_only(dtype: GgmlDType) -> bool {
    matches!(dtype, GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1)
}

/// The model as an in-memory GGUF whose [`scalar_only`] tensors are Q8_0 (nearly lossless from
/// 4 or 5 bits; those tensors take 1.7x the memory). The tokenizer's metadata is left out:
/// the model does not read it.
fn requantized(
    content: &gguf_file::Content,
    reader: &mut BufReader<File>,
) -> candle_core::Result<Cursor<Vec<u8>>> {
    let mut tensors = Vec::with_capacity(content.tensor_infos.len());
    for name in content.tensor_infos.keys() {
        let tensor = content.tensor(reader, name, &Device::Cpu)?;
        let tensor = if scalar_only(tensor.dtype()) {
            QTensor::quantize(&tensor.dequantize(&Device::Cpu)?, GgmlDType::Q8_0)?
        } else {
            tensor
        };
        tensors.push((name.as_str(), tensor));
    }
    let metadata: Vec<(&str, &gguf_file::Value)> = content
        .metadata
        .iter()
        .filter(|(key, _)| !key.starts_with("tokenizer."))
        .map(|(key, value)| (key.as_str(), value))
        .collect();
    let tensors: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (*n, t)).collect();
    let mut file = Cursor::new(Vec::new());
    gguf_file::write(&mut file, &metadata, &tensors)?;
    file.set_position(0);
    Ok(file)
}

/// One call's work on the model's thread.
struct Job {
    request: GenerationRequest,
    model_id: String,
    what: String,
    context_tokens: usize,
    seed: u64,
    repeat_penalty: f32,
    tx: mpsc::Sender<Result<GenerationEvent, GenerationError>>,
    /// The caller's place in the queue, given back when the work ends.
    _permit: OwnedSemaphorePermit,
}

/// Runs a job holding the model, turning a failure or a panic into the stream's error.
fn work(engine: &Engine, mut weights: OwnedMutexGuard<Option<ModelWeights>>, job: Job) {
    let outcome = catch_panic(|| generate_blocking(engine, &mut weights, &job));
    let failure = match outcome {
        Ok(()) => None,
        Err(Failure::Error(e)) => Some(e),
        Err(Failure::Panic(message)) => {
            // Whatever state the model was left in is dropped; the next call reloads it.
            *weights = None;
            tracing::error!(panic = %message, "the local model panicked");
            Some(GenerationError::Unavailable(format!(
                "{}: the model failed ({message})",
                job.what
            )))
        }
    };
    if let Some(model) = weights.as_mut() {
        model.clear_kv_cache();
    }
    if let Some(e) = failure {
        let _ = job.tx.blocking_send(Err(e));
    }
}

enum Failure {
    Error(GenerationError),
    Panic(String),
}

fn catch_panic<T>(f: impl FnOnce() -> Result<T, GenerationError>) -> Result<T, Failure> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(result) => result.map_err(Failure::Error),
        Err(panic) => Err(Failure::Panic(panic_message(panic.as_ref()))),
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

/// The prompt budget and the answer's limit in a window of `window` tokens: the answer is
/// kept `max_output` tokens but at most half the window.
fn prompt_budget(window: usize, max_output: usize) -> usize {
    window - max_output.min(window / 2)
}

/// Reads the prompt and generates, sending deltas; `Ok` also when the caller went away.
fn generate_blocking(
    engine: &Engine,
    slot: &mut Option<ModelWeights>,
    job: &Job,
) -> Result<(), GenerationError> {
    let fail = |e: candle_core::Error| GenerationError::Unavailable(format!("{}: {e}", job.what));
    let gone = || job.tx.is_closed();
    if gone() {
        return Ok(());
    }
    let model = match slot {
        Some(model) => model,
        None => slot.insert(engine.load_weights()?),
    };
    let tokenizer = &engine.tokenizer;
    let request = &job.request;
    let window = job.context_tokens.min(engine.trained_context);
    let max_output = usize::try_from(request.max_output_tokens).unwrap_or(usize::MAX);
    let prompt = tokenizer
        .chat_prompt(
            &request.system,
            &request.user,
            prompt_budget(window, max_output),
        )
        .map_err(|e| GenerationError::Rejected(format!("{}: {e}", job.what)))?;
    if prompt.truncated {
        tracing::info!(
            prompt_tokens = prompt.ids.len(),
            window,
            "prompt passages cut to fit the local model's window"
        );
    }
    let prompt_len = prompt.ids.len();
    let max_new = max_output.min(window.saturating_sub(prompt_len));
    let done = |output_tokens: usize, stop_reason: &str| {
        GenerationEvent::Done(GenerationUsage {
            model: job.model_id.clone(),
            input_tokens: u32::try_from(prompt_len).unwrap_or(u32::MAX),
            output_tokens: u32::try_from(output_tokens).unwrap_or(u32::MAX),
            stop_reason: stop_reason.to_owned(),
        })
    };
    if max_new == 0 {
        let _ = job.tx.blocking_send(Ok(done(0, "length")));
        return Ok(());
    }

    let started = StdInstant::now();
    let mut logits = None;
    for (block, ids) in prompt.ids.chunks(PREFILL_BLOCK).enumerate() {
        if gone() {
            return Ok(());
        }
        let input = Tensor::new(ids, &Device::Cpu)
            .and_then(|t| t.unsqueeze(0))
            .map_err(fail)?;
        logits = Some(model.forward(&input, block * PREFILL_BLOCK).map_err(fail)?);
    }
    let Some(mut logits) = logits else {
        return Err(GenerationError::Rejected(format!(
            "{}: empty prompt",
            job.what
        )));
    };
    let prefilled = started.elapsed();

    let temperature = f64::from(request.temperature);
    let sampling = if temperature <= 1e-4 {
        Sampling::ArgMax
    } else {
        Sampling::TopKThenTopP {
            k: TOP_K,
            p: TOP_P,
            temperature,
        }
    };
    let mut sampler = LogitsProcessor::from_sampling(job.seed, sampling);
    let mut text = TextStream::default();
    let mut generated: Vec<u32> = Vec::with_capacity(max_new.min(1024));
    let send = |delta: String| {
        job.tx
            .blocking_send(Ok(GenerationEvent::Delta(delta)))
            .is_ok()
    };
    let stop_reason = loop {
        let mut scores = logits.squeeze(0).map_err(fail)?;
        if job.repeat_penalty > 1.0 && !generated.is_empty() {
            let recent = &generated[generated.len().saturating_sub(REPEAT_LAST_N)..];
            scores = candle_transformers::utils::apply_repeat_penalty(
                &scores,
                job.repeat_penalty,
                recent,
            )
            .map_err(fail)?;
        }
        let next = sampler.sample(&scores).map_err(fail)?;
        if tokenizer.is_stop(next) {
            break "stop";
        }
        generated.push(next);
        let delta = text
            .push(tokenizer, next)
            .map_err(|e| GenerationError::Unavailable(format!("{}: {e}", job.what)))?;
        if let Some(delta) = delta
            && !send(delta)
        {
            return Ok(());
        }
        if generated.len() >= max_new {
            break "length";
        }
        if gone() {
            return Ok(());
        }
        let input = Tensor::new(&[next], &Device::Cpu)
            .and_then(|t| t.unsqueeze(0))
            .map_err(fail)?;
        logits = model
            .forward(&input, prompt_len + generated.len() - 1)
            .map_err(fail)?;
    };
    if let Some(rest) = text
        .finish(tokenizer)
        .map_err(|e| GenerationError::Unavailable(format!("{}: {e}", job.what)))?
        && !send(rest)
    {
        return Ok(());
    }
    let decoding = started.elapsed().saturating_sub(prefilled);
    tracing::debug!(
        prompt_tokens = prompt_len,
        output_tokens = generated.len(),
        prefill_ms = prefilled.as_millis(),
        decode_ms = decoding.as_millis(),
        stop_reason,
        "local generation done"
    );
    let _ = job.tx.blocking_send(Ok(done(generated.len(), stop_reason)));
    Ok(())
}

/// The metadata and tensor table of a GGUF file, and the file's size.
fn read_header(path: &Path) -> Result<(gguf_file::Content, u64), String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let size = file.metadata().map_err(|e| e.to_string())?.len();
    let mut reader = BufReader::new(file);
    let mut magic = [0u8; 4];
    std::io::Read::read_exact(&mut reader, &mut magic)
        .map_err(|_| "not a GGUF file (too short)".to_owned())?;
    if &magic != b"GGUF" {
        return Err("not a GGUF file (no GGUF magic)".into());
    }
    std::io::Seek::rewind(&mut reader).map_err(|e| e.to_string())?;
    let content =
        gguf_file::Content::read(&mut reader).map_err(|e| format!("unreadable GGUF: {e}"))?;
    Ok((content, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_gets_at_most_half_the_window() {
        assert_eq!(prompt_budget(2048, 512), 1536);
        assert_eq!(prompt_budget(2048, 4000), 1024);
        assert_eq!(prompt_budget(256, 1), 255);
    }

    #[test]
    fn a_panic_becomes_a_failure() {
        let outcome = catch_panic::<()>(|| panic!("index out of bounds"));
        assert!(
            matches!(&outcome, Err(Failure::Panic(m)) if m.contains("index out of bounds")),
            "not caught"
        );
        let outcome = catch_panic::<()>(|| Err(GenerationError::Unavailable("x".into())));
        assert!(matches!(outcome, Err(Failure::Error(_))));
        assert!(catch_panic(|| Ok(())).is_ok());
    }

    #[test]
    fn files_that_are_not_models_are_refused_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.gguf");
        let options = |path: &Path| LocalOptions {
            model_path: path.to_path_buf(),
            ..LocalOptions::default()
        };
        let err = LocalLlm::new(options(&missing)).expect_err("missing");
        assert!(
            matches!(&err, GenerationError::Rejected(m) if m.contains("missing.gguf") && m.contains("make llm")),
            "{err}"
        );
        let text = dir.path().join("notes.gguf");
        std::fs::write(&text, "not a model at all").expect("write");
        let err = LocalLlm::new(options(&text)).expect_err("text");
        assert!(
            matches!(&err, GenerationError::Rejected(m) if m.contains("not a GGUF")),
            "{err}"
        );
        let header_only = dir.path().join("short.gguf");
        std::fs::write(&header_only, b"GGUF\x03\0\0\0").expect("write");
        let err = LocalLlm::new(options(&header_only)).expect_err("short");
        assert!(matches!(&err, GenerationError::Rejected(_)), "{err}");
        for bad in [
            LocalOptions {
                context_tokens: 10,
                ..options(&text)
            },
            LocalOptions {
                context_tokens: MAX_CONTEXT_TOKENS + 1,
                ..options(&text)
            },
            LocalOptions {
                repeat_penalty: f32::NAN,
                ..options(&text)
            },
            LocalOptions {
                timeout: Duration::ZERO,
                ..options(&text)
            },
        ] {
            let err = LocalLlm::new(bad).expect_err("bad options");
            assert!(
                matches!(&err, GenerationError::Rejected(m) if m.contains("local model")),
                "{err}"
            );
        }
    }
}
