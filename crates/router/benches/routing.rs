//! Micro-benchmark of the complexity analyser over the sample questions, and the routing
//! table they get under the default configuration.
//!
//! `cargo bench --profile dev -p rag-router --bench routing`. The dev profile compiles this
//! crate without optimisation, so those figures are an upper bound; for optimised figures
//! without rebuilding every dependency in release, add
//! `--config 'profile.dev.package.rag-router.opt-level=3'`.

use std::hint::black_box;
use std::time::Instant;

use rag_router::routing::{self, SAMPLE_QUESTIONS};

/// Passes over the sample questions per run, and runs (the median is reported).
const ITERATIONS: usize = 2_000;
const RUNS: usize = 7;

fn main() {
    let settings = rag_config::Settings::default();
    let routing_settings = &settings.router.routing;
    let questions: Vec<_> = SAMPLE_QUESTIONS
        .iter()
        .map(|s| (s.question, s.domain.and_then(|d| settings.domain(d))))
        .collect();

    // Warm up.
    for (question, domain) in &questions {
        black_box(routing::analyse(question, *domain, routing_settings));
    }

    let time = |features_only: bool| {
        let mut per_call: Vec<f64> = (0..RUNS)
            .map(|_| {
                let started = Instant::now();
                for _ in 0..ITERATIONS {
                    for (question, domain) in &questions {
                        if features_only {
                            black_box(routing::QuestionFeatures::of(
                                black_box(question),
                                *domain,
                                routing_settings,
                            ));
                        } else {
                            black_box(routing::analyse(
                                black_box(question),
                                *domain,
                                routing_settings,
                            ));
                        }
                    }
                }
                started.elapsed().as_secs_f64() * 1e9 / (ITERATIONS * questions.len()) as f64
            })
            .collect();
        per_call.sort_by(f64::total_cmp);
        (per_call[RUNS / 2], per_call[0], per_call[RUNS - 1])
    };
    let (median, min, max) = time(false);
    let (f_median, f_min, f_max) = time(true);

    println!("routing table (default configuration)");
    println!(
        "{:<12} {:<6} {:>6}  question / reasons",
        "domain", "tier", "score"
    );
    let mut mismatches = 0;
    for sample in SAMPLE_QUESTIONS {
        let domain = sample.domain.and_then(|d| settings.domain(d));
        let decision = routing::analyse(sample.question, domain, routing_settings);
        let flag = if decision.tier == sample.expected {
            ""
        } else {
            mismatches += 1;
            "  (EXPECTED OTHERWISE)"
        };
        println!(
            "{:<12} {:<6} {:>6.2}  {}{flag}",
            sample.domain.unwrap_or("-"),
            decision.tier.as_str(),
            decision.score,
            sample.question
        );
        println!("{:<27}  └ {}", "", decision.reasons.join("; "));
    }
    println!();
    println!(
        "{} questions, {} runs of {} passes",
        questions.len(),
        RUNS,
        ITERATIONS
    );
    println!("analyse (tier + reasons): median {median:.0} ns/call (min {min:.0}, max {max:.0})");
    println!(
        "features only:            median {f_median:.0} ns/call (min {f_min:.0}, max {f_max:.0})"
    );
    println!("tiers different from the expected: {mismatches}");
}
