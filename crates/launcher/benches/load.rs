//! Load test of the gateway on loopback at rising concurrency (1, 2, 4, … 256 clients), on the
//! embedded system with the sample corpus, until latency or errors climb. Bounded: each
//! level sends at most `max(50, 4 × concurrency)` requests (1,024 at most) and starts no new
//! request after 25 s; the run stops early once a level has more than 10 % errors or a p99
//! above 10 s.
//!
//! Every request is `POST /v1/query` with a question of its own (a sample question with the
//! request's number in it: no answer can come from another) and its own `x-request-id`; the
//! answer must carry that id back (the header, and the router's `query_id`), so the run
//! proves that no request was lost (every id got exactly one response, or a counted error)
//! and none was answered twice or with another's answer. The cache is off: every request
//! takes the whole path (embedding, dense + BM25 search, fusion, extractive answer).
//!
//! The system runs in this process (`rag_launcher`), so `/proc/self/status` gives its memory:
//! resident set at the end of each level, the highest seen while it ran (sampled every 50 ms)
//! and `VmHWM`, the peak of the whole run.
//!
//! The knee: the lowest concurrency that reaches 90 % of the best throughput with under 1 %
//! errors; past it, more clients only queue (p99 grows, throughput does not).
//!
//!     cargo bench --profile dev -p rag-launcher --bench load
//!
//! Prints a table and one JSON line. Not part of CI.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rag_launcher::memory;
use serde_json::{Value, json};
use support::{Client, questions, settings, start};

const LEVELS: [usize; 9] = [1, 2, 4, 8, 16, 32, 64, 128, 256];
const LEVEL_TIME: Duration = Duration::from_secs(25);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// `VmRSS` and `VmHWM` of this process, in MiB.
fn memory_mib() -> (f64, f64) {
    (memory::rss_mib(), memory::peak_rss_mib())
}

/// What came back for one request.
#[derive(Debug, Clone)]
enum Outcome {
    /// 200 with its own id in the header and the body.
    Answered,
    /// Another HTTP status (a shed or failed request, answered once all the same).
    Status(u16),
    /// 200 whose ids are not the request's: an answer to another request.
    Misrouted(String),
    /// No response (timeout or connection error).
    NoResponse(String),
}

struct Level {
    concurrency: usize,
    sent: usize,
    latencies_ms: Vec<f64>,
    outcomes: HashMap<String, Vec<Outcome>>,
    statuses: HashMap<String, usize>,
    elapsed: Duration,
    rss_end: f64,
    rss_max: f64,
    hwm: f64,
}

impl Level {
    fn answered(&self) -> usize {
        self.outcomes
            .values()
            .flatten()
            .filter(|o| matches!(o, Outcome::Answered))
            .count()
    }

    fn errors(&self) -> usize {
        self.sent - self.answered()
    }

    fn error_rate(&self) -> f64 {
        self.errors() as f64 / self.sent.max(1) as f64
    }

    fn throughput(&self) -> f64 {
        self.answered() as f64 / self.elapsed.as_secs_f64()
    }

    fn p(&self, p: f64) -> f64 {
        percentile(&self.latencies_ms, p)
    }
}

async fn one_request(client: &Client, id: &str, question: &str, domain: Option<&str>) -> Outcome {
    let mut body = json!({ "question": question });
    if let Some(domain) = domain {
        body["domain"] = domain.into();
    }
    let response = client
        .http
        .post(format!("{}/v1/query", client.base))
        .header("x-request-id", id)
        .timeout(REQUEST_TIMEOUT)
        .json(&body)
        .send()
        .await;
    let response = match response {
        Ok(response) => response,
        Err(e) => return Outcome::NoResponse(e.to_string()),
    };
    let status = response.status().as_u16();
    let echoed = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: Value = match response.json().await {
        Ok(body) => body,
        Err(e) => return Outcome::NoResponse(format!("body: {e}")),
    };
    if status != 200 {
        return Outcome::Status(status);
    }
    let query_id = body["query_id"].as_str().unwrap_or_default();
    if echoed.as_deref() != Some(id) || query_id != id {
        return Outcome::Misrouted(format!("header {echoed:?}, query_id {query_id:?}"));
    }
    Outcome::Answered
}

async fn run_level(
    client: &Arc<Client>,
    questions: &Arc<Vec<support::Question>>,
    concurrency: usize,
    next_id: &Arc<AtomicU64>,
) -> Level {
    let budget = (4 * concurrency).clamp(50, 1_024);
    let issued = Arc::new(AtomicUsize::new(0));
    let results = Arc::new(Mutex::new(Vec::<(String, Outcome, f64)>::new()));
    let started = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let rss_max = Arc::new(Mutex::new(memory_mib().0));
    let sampler = {
        let (done, rss_max) = (Arc::clone(&done), Arc::clone(&rss_max));
        tokio::spawn(async move {
            while !done.load(Ordering::SeqCst) {
                let (rss, _) = memory_mib();
                {
                    let mut max = rss_max.lock();
                    *max = max.max(rss);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (client, questions, issued, results, next_id) = (
            Arc::clone(client),
            Arc::clone(questions),
            Arc::clone(&issued),
            Arc::clone(&results),
            Arc::clone(next_id),
        );
        workers.spawn(async move {
            while started.elapsed() < LEVEL_TIME && issued.fetch_add(1, Ordering::SeqCst) < budget {
                let n = next_id.fetch_add(1, Ordering::SeqCst);
                let q = &questions[n as usize % questions.len()];
                let id = format!("load-{n:06}");
                let question = format!("(request {n}) {}", q.question);
                let asked = Instant::now();
                let outcome = one_request(&client, &id, &question, q.domain.as_deref()).await;
                let ms = asked.elapsed().as_secs_f64() * 1000.0;
                results.lock().push((id, outcome, ms));
            }
        });
    }
    while workers.join_next().await.is_some() {}
    let elapsed = started.elapsed();
    done.store(true, Ordering::SeqCst);
    let _ = sampler.await;
    let (rss_end, hwm) = memory_mib();
    let results = std::mem::take(&mut *results.lock());
    let mut latencies_ms = Vec::new();
    let mut outcomes: HashMap<String, Vec<Outcome>> = HashMap::new();
    let mut statuses: HashMap<String, usize> = HashMap::new();
    for (id, outcome, ms) in &results {
        let label = match outcome {
            Outcome::Answered => {
                latencies_ms.push(*ms);
                "200".to_owned()
            }
            Outcome::Status(s) => s.to_string(),
            Outcome::Misrouted(_) => "misrouted".into(),
            Outcome::NoResponse(_) => "no response".into(),
        };
        *statuses.entry(label).or_default() += 1;
        outcomes
            .entry(id.clone())
            .or_default()
            .push(outcome.clone());
    }
    latencies_ms.sort_by(f64::total_cmp);
    let rss_max = *rss_max.lock();
    Level {
        concurrency,
        sent: results.len(),
        latencies_ms,
        outcomes,
        statuses,
        elapsed,
        rss_end,
        rss_max: rss_max.max(rss_end),
        hwm,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut s = settings(dir.path());
    s.cache.enabled = false;
    let system = start(s).await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .build()?;
    let client = Arc::new(Client {
        base: system.url(),
        http,
    });
    let report = rag_launcher::seed(
        &system.settings,
        &support::repo_root().join("data/documents"),
    )
    .await?;
    let documents = client
        .wait_indexed(report.uploaded, Duration::from_secs(600))
        .await?;
    let questions = Arc::new(questions());
    let (rss_idle, _) = memory_mib();
    eprintln!(
        "{} documents indexed; {} questions; RSS idle {rss_idle:.0} MiB",
        documents.len(),
        questions.len()
    );

    let next_id = Arc::new(AtomicU64::new(0));
    let mut levels: Vec<Level> = Vec::new();
    for concurrency in LEVELS {
        let level = run_level(&client, &questions, concurrency, &next_id).await;
        eprintln!(
            "concurrency {concurrency}: {} sent, {} errors, p50 {:.0} ms, p99 {:.0} ms, {:.1} req/s, RSS {:.0} MiB",
            level.sent,
            level.errors(),
            level.p(50.0),
            level.p(99.0),
            level.throughput(),
            level.rss_max
        );
        let climbed = level.error_rate() > 0.10 || level.p(99.0) > 10_000.0;
        levels.push(level);
        if climbed {
            eprintln!("errors or latency climbed: stopping");
            break;
        }
    }
    system.shutdown().await;

    // Every request id got exactly one response, its own.
    let mut total = 0;
    let mut twice = Vec::new();
    let mut misrouted = 0;
    let mut no_response = 0;
    let mut first_problem = None;
    for level in &levels {
        for (id, outcomes) in &level.outcomes {
            total += 1;
            if outcomes.len() != 1 {
                twice.push(id.clone());
            }
            for o in outcomes {
                match o {
                    Outcome::Misrouted(why) => {
                        misrouted += 1;
                        first_problem.get_or_insert_with(|| format!("{id}: misrouted, {why}"));
                    }
                    Outcome::NoResponse(why) => {
                        no_response += 1;
                        first_problem.get_or_insert_with(|| format!("{id}: no response, {why}"));
                    }
                    _ => {}
                }
            }
        }
    }
    let sent: usize = levels.iter().map(|l| l.sent).sum();
    let issued = usize::try_from(next_id.load(Ordering::SeqCst))?;

    let best = levels
        .iter()
        .filter(|l| l.error_rate() < 0.01)
        .map(Level::throughput)
        .fold(0.0, f64::max);
    let knee = levels
        .iter()
        .find(|l| l.error_rate() < 0.01 && l.throughput() >= 0.9 * best);

    println!(
        "\nLoad on loopback, cache off, {} documents (RSS idle {rss_idle:.0} MiB)",
        documents.len()
    );
    println!(
        "{:>5} {:>6} {:>6} {:>7} {:>8} {:>9} {:>9} {:>9} {:>9} {:>10} {:>9}  statuses",
        "conc",
        "sent",
        "ok",
        "errors",
        "req/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "RSS MiB",
        "RSS max",
        "VmHWM"
    );
    for l in &levels {
        let mut statuses: Vec<_> = l.statuses.iter().collect();
        statuses.sort();
        println!(
            "{:>5} {:>6} {:>6} {:>7} {:>8.1} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>10.0} {:>9.0}  {statuses:?}",
            l.concurrency,
            l.sent,
            l.answered(),
            l.errors(),
            l.throughput(),
            l.p(50.0),
            l.p(99.0),
            l.p(100.0),
            l.rss_end,
            l.rss_max,
            l.hwm
        );
    }
    println!(
        "requests: {issued} ids issued, {sent} sent, {total} distinct ids answered, {} answered more than once, {misrouted} with another's answer, {no_response} without a response",
        twice.len()
    );
    if let Some(problem) = &first_problem {
        println!("first problem: {problem}");
    }
    match knee {
        Some(k) => println!(
            "knee: concurrency {} — {:.1} req/s (best {best:.1}), p50 {:.0} ms, p99 {:.0} ms, RSS {:.0} MiB (max during the level {:.0}, VmHWM {:.0})",
            k.concurrency,
            k.throughput(),
            k.p(50.0),
            k.p(99.0),
            k.rss_end,
            k.rss_max,
            k.hwm
        ),
        None => println!("knee: none (every level had errors)"),
    }
    let rows: Vec<Value> = levels
        .iter()
        .map(|l| {
            json!({
                "concurrency": l.concurrency, "sent": l.sent, "ok": l.answered(),
                "errors": l.errors(), "statuses": l.statuses, "rps": l.throughput(),
                "p50_ms": l.p(50.0), "p99_ms": l.p(99.0), "max_ms": l.p(100.0),
                "rss_mib": l.rss_end, "rss_max_mib": l.rss_max, "vm_hwm_mib": l.hwm,
            })
        })
        .collect();
    println!(
        "{}",
        json!({
            "bench": "load",
            "levels": rows,
            "knee": knee.map(|k| json!({
                "concurrency": k.concurrency, "rps": k.throughput(), "p99_ms": k.p(99.0),
                "rss_mib": k.rss_end, "rss_max_mib": k.rss_max,
            })),
            "ids": { "issued": issued, "sent": sent, "distinct": total,
                     "answered_twice": twice.len(), "misrouted": misrouted,
                     "no_response": no_response },
            "rss_idle_mib": rss_idle,
        })
    );
    anyhow::ensure!(
        issued == sent && sent == total && twice.is_empty() && misrouted == 0,
        "a request was lost or answered twice"
    );
    Ok(())
}
