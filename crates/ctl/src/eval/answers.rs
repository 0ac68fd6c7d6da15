//! `ragctl eval answers`: a question-answering set with gold answers and gold passages
//! (NQ-Open oracle's layout, `rag_eval::qa`) through the real system. The gold passages go in
//! as uploads do, except a held-out share; the questions go to the router over gRPC, as the
//! gateway sends them (the semantic and exact caches off, so each question is answered on its
//! own); the answers are scored by `rag_eval::answers` and, with `--judge`, by an LLM judge.
//!
//! Prints a table (and with `--json` one JSON object last), writes every question's answer,
//! citations, scores and judge's reasons to a JSON-lines details file, and records the run
//! as an `answers` experiment with the prompt versions, models and retrieval settings.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use rag_config::{GeneratorSettings, Settings};
use rag_core::ObjectKey;
use rag_eval::answers::{CitedPassage, JudgeOutcome, QuestionResult, score};
use rag_eval::judge::{self, Judge, JudgePrompt};
use rag_eval::qa::Passage;
use rag_eval::{AnswerEvaluator, AnswersReport, Document, ExperimentRecord, QaDataset};
use rag_launcher::Loader;
use rag_proto::AnswerRequest;
use rag_proto::router_service_client::RouterServiceClient;

use super::{DOMAIN, Method, dataset_name, eval_settings, latency, record, recorder};

/// Who judges the answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum JudgeKind {
    /// No judge (the default: offline, free).
    Off,
    /// The configured strong tier's model (`[generation.strong]`: Nova Pro in the cluster).
    Strong,
    /// Bedrock Converse in the `aws` region (`--judge-model`, default Nova Pro).
    Bedrock,
    /// An OpenAI-compatible server (`--judge-base-url`, `--judge-model`).
    Openai,
}

#[derive(Debug, clap::Args)]
pub struct JudgeArgs {
    /// LLM-as-judge of faithfulness and relevance.
    #[arg(long, value_enum, default_value = "off")]
    judge: JudgeKind,
    /// The judge's model: a Bedrock model id (default `amazon.nova-pro-v1:0`) or the
    /// OpenAI-compatible server's model name.
    #[arg(long)]
    judge_model: Option<String>,
    /// The OpenAI-compatible server's API root, e.g. `http://127.0.0.1:11434/v1`.
    #[arg(long)]
    judge_base_url: Option<String>,
    /// The environment variable holding the OpenAI-compatible server's API key.
    #[arg(long)]
    judge_api_key_env: Option<String>,
    /// Another Bedrock endpoint than the region's (a VPC endpoint).
    #[arg(long)]
    judge_endpoint_url: Option<String>,
    /// The judge prompt's version: `prompts/judge/<version>.toml`.
    #[arg(long, default_value = judge::DEFAULT_VERSION)]
    judge_prompt: String,
    /// Read the judge prompt from `<dir>/judge/` (default: `prompts.dir` when configured,
    /// else the built-in prompts).
    #[arg(long)]
    judge_prompt_dir: Option<PathBuf>,
}

/// Seconds a judge model may take before its first token.
const JUDGE_TIMEOUT_MS: u64 = 60_000;
const JUDGE_ATTEMPTS: u32 = 4;
const DEFAULT_BEDROCK_JUDGE: &str = "amazon.nova-pro-v1:0";

impl JudgeArgs {
    /// The judge the arguments name, checked before anything is loaded.
    fn build(&self, settings: &Settings) -> anyhow::Result<Option<Judge>> {
        let tier = match self.judge {
            JudgeKind::Off => return Ok(None),
            JudgeKind::Strong => settings.generation.strong.clone(),
            JudgeKind::Bedrock => GeneratorSettings::Bedrock {
                model_id: self
                    .judge_model
                    .clone()
                    .unwrap_or_else(|| DEFAULT_BEDROCK_JUDGE.into()),
                streaming: false,
                max_attempts: JUDGE_ATTEMPTS,
                timeout_ms: JUDGE_TIMEOUT_MS,
                endpoint_url: self.judge_endpoint_url.clone(),
            },
            JudgeKind::Openai => GeneratorSettings::Openai {
                base_url: self
                    .judge_base_url
                    .clone()
                    .context("--judge openai needs --judge-base-url")?,
                model: self
                    .judge_model
                    .clone()
                    .context("--judge openai needs --judge-model")?,
                api_key_env: self.judge_api_key_env.clone(),
                max_attempts: JUDGE_ATTEMPTS,
                timeout_ms: JUDGE_TIMEOUT_MS,
            },
        };
        let Some(generator) = rag_backends::generator(settings, &tier)? else {
            bail!(
                "--judge strong: the strong tier is the extractive answerer, which cannot judge; \
                 configure [generation.strong] or use --judge bedrock or --judge openai"
            );
        };
        let dir = self
            .judge_prompt_dir
            .clone()
            .or_else(|| settings.prompts.dir.clone());
        let prompt = JudgePrompt::load(dir.as_deref(), &self.judge_prompt)?;
        Ok(Some(Judge::new(generator, prompt)))
    }
}

#[derive(Debug, clap::Args)]
pub struct AnswersArgs {
    /// A question-answering set, JSON Lines (gzip allowed): `question`, `answers`, and the
    /// gold passage in `ctxs` (`title`, `text`), as `nq-open-oracle.jsonl.gz`.
    #[arg(long)]
    dataset: PathBuf,
    /// Ask only the first N questions (the corpus is still every passage of the file).
    #[arg(long)]
    limit: Option<usize>,
    /// Share of the gold passages left out of the corpus; their questions measure the
    /// "I don't know" rate.
    #[arg(long, default_value_t = 0.1)]
    holdout: f64,
    /// Which passages are held out (the same seed and share always pick the same ones).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Chunks retrieved per question (default: `router.top_k`).
    #[arg(long)]
    top_k: Option<u32>,
    /// Dense weight of hybrid fusion (default: the configured one).
    #[arg(long)]
    alpha: Option<f32>,
    /// Where the corpus is kept (a later run with the same holdout reuses it); default
    /// `.rag-data/eval/<dataset>/answers-holdout<share>-seed<seed>-chunk<size>`.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Every question's answer, citations, scores and judge's reasons, as JSON lines;
    /// default `<data dir>/answers-<unix time>.jsonl`.
    #[arg(long)]
    details: Option<PathBuf>,
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    judge: JudgeArgs,
}

pub async fn answers(settings: Settings, args: AnswersArgs) -> anyhow::Result<()> {
    if !(0.0..1.0).contains(&args.holdout) {
        bail!("--holdout must be in [0, 1), got {}", args.holdout);
    }
    if args.limit == Some(0) {
        bail!("--limit must be at least 1");
    }
    if let Some(a) = args.alpha.filter(|a| !(0.0..=1.0).contains(a)) {
        bail!("--alpha must be in [0, 1], got {a}");
    }
    let dataset = QaDataset::open(&args.dataset)
        .with_context(|| format!("cannot open {}", args.dataset.display()))?;
    if dataset.items().is_empty() {
        bail!("{}: no question", args.dataset.display());
    }
    let judge = args.judge.build(&settings)?;
    let name = dataset_name(&args.dataset);
    let data_dir = args.data_dir.clone().unwrap_or_else(|| {
        PathBuf::from(".rag-data/eval").join(&name).join(format!(
            "answers-holdout{}-seed{}-chunk{}",
            args.holdout, args.seed, settings.ingest.chunk_size
        ))
    });
    let details = args.details.clone().unwrap_or_else(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        data_dir.join(format!("answers-{now}.jsonl"))
    });
    let mut settings = eval_settings(settings, data_dir);
    // Each question answered on its own: a semantic hit would score another question's answer.
    settings.cache.enabled = false;

    let held_out = dataset.holdout(args.holdout, args.seed);
    let asked = args.limit.unwrap_or(usize::MAX).min(dataset.items().len());
    let run = Run {
        dataset: &dataset,
        held_out: &held_out,
        asked,
        args: &args,
        judge: judge.as_ref(),
        details: &details,
    };
    let report = super::with_system(settings, async |settings: &Settings| {
        run.run(settings, &name).await
    })
    .await?;
    println!("{report}");
    eprintln!("per-question results: {}", details.display());
    let experiment = ExperimentRecord::new("answers", report.params.clone(), report.metrics());
    let run_name = format!(
        "answers {name} {}",
        judge
            .as_ref()
            .map_or_else(|| "no judge".to_owned(), |j| format!("judge {}", j.model()))
    );
    record(&recorder(), &experiment, &run_name).await;
    if args.json {
        println!("{}", report.to_json_line()?);
    }
    Ok(())
}

/// One run's inputs.
struct Run<'a> {
    dataset: &'a QaDataset,
    held_out: &'a BTreeSet<usize>,
    asked: usize,
    args: &'a AnswersArgs,
    judge: Option<&'a Judge>,
    details: &'a Path,
}

impl Run<'_> {
    async fn run(&self, settings: &Settings, name: &str) -> anyhow::Result<AnswersReport> {
        let by_document = self.load(settings).await?;
        let corpus = self.dataset.passages().len() - self.held_out.len();

        let router = RouterServiceClient::new(rag_grpc::lazy_channel(
            &settings.gateway.router_url,
            Duration::from_secs(120),
        )?);
        if let Some(parent) = self.details.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let mut details = std::io::BufWriter::new(
            std::fs::File::create(self.details)
                .with_context(|| format!("cannot create {}", self.details.display()))?,
        );
        let bar = ProgressBar::new(self.asked as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:40}] {pos}/{len} questions ({per_sec}, eta {eta})",
            )
            .context("progress bar template")?
            .progress_chars("=> "),
        );
        let mut evaluator = AnswerEvaluator::new();
        let mut latencies = Vec::with_capacity(self.asked);
        let mut prompt_versions = BTreeSet::new();
        let mut models = BTreeSet::new();
        for (index, item) in self.dataset.items().iter().take(self.asked).enumerate() {
            let request = AnswerRequest {
                question: item.question.clone(),
                domain: DOMAIN.into(),
                top_k: self.args.top_k.unwrap_or(0),
                tenant: settings.default_tenant.clone(),
                request_id: format!("eval-answers-{index}"),
                alpha: self.args.alpha,
                ..AnswerRequest::default()
            };
            let started = Instant::now();
            let response = router
                .clone()
                .answer_unary(request)
                .await
                .with_context(|| format!("question {index}: {:?}", item.question))?
                .into_inner();
            let took = started.elapsed();
            latencies.push(took);

            let gold = &self.dataset.passages()[item.passage];
            let cited: Vec<(CitedPassage, String, String)> = response
                .citations
                .iter()
                .map(|c| {
                    let passage = by_document.get(&c.document_id).copied();
                    let citation = CitedPassage::new(
                        c.number,
                        passage.map_or(c.title.as_str(), |p| p.title.as_str()),
                        passage.map(|p| (p.id.as_str(), p.text.as_str())),
                        &gold.id,
                        &item.answers,
                    );
                    let (title, text) = passage.map_or_else(
                        || (c.title.clone(), c.snippet.clone()),
                        |p| (p.title.clone(), p.text.clone()),
                    );
                    (citation, title, text)
                })
                .collect();
            let citations: Vec<CitedPassage> = cited.iter().map(|(c, _, _)| c.clone()).collect();
            let scores = score(&response.answer, &item.answers, &citations);
            let verdict = match self.judge {
                None => None,
                Some(judge) => {
                    let context: Vec<(u32, String, String)> = cited
                        .iter()
                        .map(|(c, title, text)| (c.number, title.clone(), text.clone()))
                        .collect();
                    let context = judge::render_context(&context);
                    Some(
                        match judge
                            .judge(&item.question, &context, &response.answer)
                            .await
                        {
                            Ok(v) => JudgeOutcome::Scored(v),
                            Err(e) => {
                                bar.suspend(|| eprintln!("warning: question {index}: {e}"));
                                JudgeOutcome::Failed(e.to_string())
                            }
                        },
                    )
                }
            };
            prompt_versions.insert(response.prompt_version.clone());
            models.insert(response.model.clone());
            let result = QuestionResult {
                index,
                question: item.question.clone(),
                gold_answers: item.answers.clone(),
                gold_passage: gold.id.clone(),
                held_out: self.held_out.contains(&item.passage),
                answer: response.answer,
                citations,
                scores,
                model: response.model,
                tier: response.tier,
                prompt_version: response.prompt_version,
                latency_ms: took.as_secs_f64() * 1000.0,
                judge: verdict,
            };
            evaluator.add(&result);
            serde_json::to_writer(&mut details, &result)?;
            details.write_all(b"\n")?;
            bar.inc(1);
        }
        bar.finish();
        details.flush()?;

        let mut params = BTreeMap::from([
            ("dataset".to_owned(), name.to_owned()),
            ("questions_asked".to_owned(), self.asked.to_string()),
            ("holdout".to_owned(), self.args.holdout.to_string()),
            ("seed".to_owned(), self.args.seed.to_string()),
            (
                "top_k".to_owned(),
                self.args.top_k.unwrap_or(settings.router.top_k).to_string(),
            ),
            (
                "fusion".to_owned(),
                Method::weighted(settings).name().to_owned(),
            ),
            (
                "alpha".to_owned(),
                self.args
                    .alpha
                    .unwrap_or(settings.retriever.alpha)
                    .to_string(),
            ),
            (
                "chunk_size".to_owned(),
                settings.ingest.chunk_size.to_string(),
            ),
            (
                "chunk_overlap".to_owned(),
                settings.ingest.chunk_overlap.to_string(),
            ),
            (
                "min_relevance".to_owned(),
                settings.router.min_relevance.to_string(),
            ),
            (
                "models".to_owned(),
                models.into_iter().collect::<Vec<_>>().join(","),
            ),
            ("details".to_owned(), self.details.display().to_string()),
        ]);
        if let Some(judge) = self.judge {
            params.insert("judge_model".into(), judge.model().to_owned());
            params.insert("judge_prompt".into(), judge.prompt().id.clone());
        }
        params.insert(
            "prompt_versions".into(),
            prompt_versions.into_iter().collect::<Vec<_>>().join(","),
        );
        Ok(evaluator.finish(corpus, latency(&latencies), params))
    }

    /// Puts every passage that is not held out, as `<passage id>.txt` (title, blank line,
    /// text), and waits until they are indexed; returns the passage of each document id.
    async fn load(&self, settings: &Settings) -> anyhow::Result<HashMap<String, &Passage>> {
        let started = Instant::now();
        let mut loader = Loader::new(settings)?;
        let mut by_document = HashMap::new();
        for (i, passage) in self.dataset.passages().iter().enumerate() {
            if self.held_out.contains(&i) {
                continue;
            }
            let upload = rag_launcher::load::corpus_upload(
                DOMAIN,
                &Document {
                    id: passage.id.clone(),
                    title: passage.title.clone(),
                    text: passage.text.clone(),
                },
            );
            let key = ObjectKey::for_upload(&settings.default_tenant, DOMAIN, &upload.file_name);
            by_document.insert(key.document_id.to_string(), passage);
            loader.put(upload).await?;
        }
        let report = loader.report();
        eprintln!(
            "{} passages ({} held out): {} queued, {} unchanged ({:.1} s)",
            by_document.len(),
            self.held_out.len(),
            report.uploaded,
            report.unchanged,
            started.elapsed().as_secs_f64()
        );
        let progress = crate::load::wait_with_bar(&loader).await?;
        eprintln!(
            "indexed {}, failed {} after {:.1} s",
            progress.indexed,
            progress.failed,
            started.elapsed().as_secs_f64()
        );
        let stored = (progress.indexed + progress.failed) as usize;
        if stored > by_document.len() {
            bail!(
                "{} holds {stored} documents but this corpus has {}: passages held out now \
                 may have been loaded by an earlier run; use another --data-dir",
                settings.data_dir.display(),
                by_document.len()
            );
        }
        if progress.failed > 0 {
            eprintln!("warning: {} passages failed to ingest", progress.failed);
        }
        Ok(by_document)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: JudgeArgs,
    }

    fn judge(args: &[&str], settings: &Settings) -> anyhow::Result<Option<Judge>> {
        let cli = Cli::try_parse_from(std::iter::once("x").chain(args.iter().copied()))?;
        cli.args.build(settings)
    }

    #[test]
    fn judge_arguments_are_checked_up_front() {
        let settings = Settings::default();
        assert!(judge(&[], &settings).unwrap().is_none());
        let err = judge(&["--judge", "strong"], &settings)
            .unwrap_err()
            .to_string();
        assert!(err.contains("extractive answerer"), "{err}");
        let err = judge(&["--judge", "openai", "--judge-model", "m"], &settings)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--judge-base-url"), "{err}");
        let j = judge(
            &[
                "--judge",
                "openai",
                "--judge-model",
                "llama3.1:8b",
                "--judge-base-url",
                "http://127.0.0.1:9/v1",
            ],
            &settings,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (j.model(), j.prompt().id.as_str()),
            ("llama3.1:8b", "judge/v1")
        );
        let j = judge(&["--judge", "bedrock"], &settings).unwrap().unwrap();
        assert_eq!(j.model(), DEFAULT_BEDROCK_JUDGE);
        let err = judge(&["--judge", "bedrock", "--judge-prompt", "v9"], &settings)
            .unwrap_err()
            .to_string();
        assert!(err.contains("judge/v9"), "{err}");
    }
}
