//! The benchmark's output: the machine description, the goals of issue 10, the table and
//! the latency-vs-concurrency chart (an SVG of polylines, written by hand).

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use super::{Cell, Results};

/// Milliseconds, NaN when there is no value.
pub fn ms(d: Option<Duration>) -> f64 {
    d.map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
}

pub use rag_launcher::memory::{peak_rss_mib, reset_peak_rss};

fn first_line_of(command: &str, args: &[&str]) -> String {
    std::process::Command::new(command)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

fn proc_field(file: &str, key: &str) -> Option<String> {
    std::fs::read_to_string(file).ok().and_then(|text| {
        text.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
    })
}

/// CPU model, cores, memory, OS, rustc and the git revision.
pub fn machine() -> Value {
    let memory_gib = proc_field("/proc/meminfo", "MemTotal")
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map(|kb| kb / 1024.0 / 1024.0);
    json!({
        "cpu": proc_field("/proc/cpuinfo", "model name").unwrap_or_else(|| "unknown".into()),
        "cores": std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
        "memory_gib": memory_gib,
        "os": first_line_of("uname", &["-sr"]),
        "rustc": first_line_of("rustc", &["--version"]),
        "git_revision": first_line_of("git", &["rev-parse", "HEAD"]),
    })
}

/// A goal of issue 10 and whether the run met it.
#[derive(Debug, Clone, Serialize)]
pub struct Goal {
    pub goal: String,
    pub measured: String,
    pub met: bool,
}

fn find<'a>(results: &'a Results, cache: &str, c: usize) -> Option<&'a Cell> {
    results
        .cells
        .iter()
        .find(|x| x.cache == cache && x.concurrency == c && x.generation.starts_with("off"))
}

pub fn goals(results: &Results) -> Vec<Goal> {
    let mut goals = Vec::new();
    let mut goal = |goal: &str, measured: String, met: bool| {
        goals.push(Goal {
            goal: goal.to_owned(),
            measured,
            met,
        });
    };
    if let Some(c1) = find(results, "off", 1) {
        goal(
            "p50 <= 15 ms at concurrency 1 (gateway, cache off, generation off)",
            format!("{:.1} ms", c1.p50_ms),
            c1.p50_ms <= 15.0,
        );
        goal(
            "p99 <= 50 ms at concurrency 1",
            format!("{:.1} ms", c1.p99_ms),
            c1.p99_ms <= 50.0,
        );
    }
    if let Some(c32) = find(results, "off", 32) {
        goal(
            ">= 200 queries/s at concurrency 32 without errors (cache off)",
            format!("{:.1} q/s, {} errors", c32.queries_per_s, c32.errors),
            c32.queries_per_s >= 200.0 && c32.errors == 0,
        );
    }
    if let Some(exact) = find(results, "exact", 1) {
        goal(
            "exact cache hit p50 <= 2 ms (concurrency 1)",
            format!("{:.2} ms", exact.p50_ms),
            exact.p50_ms <= 2.0,
        );
    }
    let o = &results.overhead;
    goal(
        "service-layer overhead <= 1.5x direct in-process retrieval (p50, c=1)",
        format!(
            "{:.2}x ({:.1} ms / {:.1} ms)",
            o.ratio, o.gateway_p50_ms, o.direct_p50_ms
        ),
        o.ratio <= 1.5,
    );
    goal(
        "peak RSS <= 1 GiB with the corpus loaded",
        format!("{:.0} MiB", results.peak_rss_mib),
        results.peak_rss_mib <= 1024.0,
    );
    goal(
        "cold start to ready <= 5 s (model loaded, corpus on disk)",
        format!("{:.2} s", results.cold_start_loaded_s),
        results.cold_start_loaded_s <= 5.0,
    );
    goals
}

pub fn cell_line(c: &Cell) -> String {
    let served = c
        .served
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "| {:<18} | {:<8} | {:>4} | {:>5} | {:>8.1} | {:>8.1} | {:>8.1} | {:>7.1} | {:>6} | {served} |",
        c.generation,
        c.cache,
        c.concurrency,
        c.queries,
        c.p50_ms,
        c.p95_ms,
        c.p99_ms,
        c.queries_per_s,
        c.errors
    )
}

pub fn print_table(r: &Results) {
    println!();
    println!(
        "{} ({} documents, {} chunks), {}",
        r.dataset, r.ingestion.documents, r.ingestion.chunks, r.profile
    );
    println!(
        "machine: {}, {} cores, {:.1} GiB, {}; {}",
        r.machine["cpu"].as_str().unwrap_or("?"),
        r.machine["cores"],
        r.machine["memory_gib"].as_f64().unwrap_or(f64::NAN),
        r.machine["rustc"].as_str().unwrap_or("?"),
        r.machine["git_revision"].as_str().unwrap_or("?"),
    );
    println!();
    println!(
        "| generation         | cache    |    c | queries |   p50 ms |   p95 ms |   p99 ms |     q/s | errors | served |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for c in &r.cells {
        println!("{}", cell_line(c));
    }
    println!();
    for s in &r.streaming {
        println!(
            "streaming, generation {}: first token p50 {:.1} ms (p95 {:.1}), whole answer p50 {:.1} ms ({} questions)",
            s.generation, s.first_token_p50_ms, s.first_token_p95_ms, s.done_p50_ms, s.queries
        );
    }
    let i = &r.ingestion;
    println!(
        "ingestion ({} embedding cache): {} documents, {} chunks in {:.1} s: {:.1} documents/s, {:.1} chunks/s; one upload searchable after {:.0} ms",
        if i.embedding_cache_warm {
            "warm"
        } else {
            "cold"
        },
        i.documents,
        i.chunks,
        i.seconds,
        i.documents_per_s,
        i.chunks_per_s,
        i.time_to_searchable_ms
    );
    let o = &r.overhead;
    println!(
        "overhead: gateway p50 {:.1} ms / in-process retrieval p50 {:.1} ms (p95 {:.1}) = {:.2}x",
        o.gateway_p50_ms, o.direct_p50_ms, o.direct_p95_ms, o.ratio
    );
    println!(
        "cold start to ready: {:.2} s empty, {:.2} s with the corpus on disk; peak RSS {:.0} MiB",
        r.cold_start_empty_s, r.cold_start_loaded_s, r.peak_rss_mib
    );
    println!();
    for g in &r.goals {
        println!(
            "[{}] {}: {}",
            if g.met { "met" } else { "NOT met" },
            g.goal,
            g.measured
        );
    }
    for note in &r.notes {
        println!("note: {note}");
    }
}

/// Latency (log scale) against concurrency (log scale): p50 solid and p99 dashed, one
/// colour per cache mode and generation.
pub fn svg(r: &Results) -> String {
    const W: f64 = 760.0;
    const H: f64 = 460.0;
    const LEFT: f64 = 70.0;
    const RIGHT: f64 = 230.0;
    const TOP: f64 = 40.0;
    const BOTTOM: f64 = 60.0;
    let colours = [
        "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
    ];
    let mut series: Vec<(String, Vec<&Cell>)> = Vec::new();
    for c in &r.cells {
        let key = format!("{}, cache {}", c.generation, c.cache);
        match series.iter_mut().find(|(k, _)| *k == key) {
            Some((_, cells)) => cells.push(c),
            None => series.push((key, vec![c])),
        }
    }
    let values: Vec<f64> = r
        .cells
        .iter()
        .flat_map(|c| [c.p50_ms, c.p99_ms])
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    let levels: Vec<f64> = r.cells.iter().map(|c| c.concurrency as f64).collect();
    let (x_min, x_max) = (
        levels
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min)
            .max(1.0),
        levels.iter().copied().fold(1.0, f64::max),
    );
    let y_lo = values
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .max(0.01)
        .log10()
        .floor();
    let y_hi = values
        .iter()
        .copied()
        .fold(1.0, f64::max)
        .log10()
        .ceil()
        .max(y_lo + 1.0);
    let (x_lo, x_hi) = (x_min.log2(), x_max.log2().max(x_min.log2() + 1.0));
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let x = |c: f64| LEFT + (c.log2() - x_lo) / (x_hi - x_lo) * plot_w;
    let y = |v: f64| TOP + plot_h - (v.max(1e-3).log10() - y_lo) / (y_hi - y_lo) * plot_h;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="22" font-size="14">Query latency vs concurrency ({}; p50 solid, p99 dashed)</text>"#,
        escape(&r.name)
    );
    // Axes, decade lines and concurrency ticks.
    let (x0, y0) = (LEFT, TOP + plot_h);
    let _ = writeln!(
        s,
        r#"<path d="M{LEFT},{TOP} V{y0} H{}" fill="none" stroke="black"/>"#,
        LEFT + plot_w
    );
    let mut decade = y_lo;
    while decade <= y_hi + 1e-9 {
        let v = 10f64.powf(decade);
        let yy = y(v);
        let _ = writeln!(
            s,
            r##"<line x1="{x0}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + plot_w,
            x0 - 6.0,
            yy + 4.0,
            if v < 1.0 {
                format!("{v}")
            } else {
                format!("{v:.0}")
            }
        );
        decade += 1.0;
    }
    let mut ticks: Vec<usize> = r.cells.iter().map(|c| c.concurrency).collect();
    ticks.sort_unstable();
    ticks.dedup();
    for t in ticks {
        let xx = x(t as f64);
        let _ = writeln!(
            s,
            r#"<line x1="{xx:.1}" y1="{y0}" x2="{xx:.1}" y2="{:.1}" stroke="black"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle">{t}</text>"#,
            y0 + 5.0,
            y0 + 20.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">concurrent clients</text>"#,
        LEFT + plot_w / 2.0,
        H - 15.0
    );
    let _ = writeln!(
        s,
        r#"<text x="18" y="{:.1}" text-anchor="middle" transform="rotate(-90 18 {:.1})">latency (ms, log scale)</text>"#,
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0
    );
    for (i, (name, cells)) in series.iter().enumerate() {
        let colour = colours[i % colours.len()];
        for (dash, pick) in [("", 50), (r#" stroke-dasharray="6 4""#, 99)] {
            let points: Vec<String> = cells
                .iter()
                .map(|c| {
                    let v = if pick == 50 { c.p50_ms } else { c.p99_ms };
                    format!("{:.1},{:.1}", x(c.concurrency as f64), y(v))
                })
                .collect();
            let _ = writeln!(
                s,
                r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>"#,
                points.join(" ")
            );
            for p in &points {
                if let Some((px, py)) = p.split_once(',') {
                    let _ = writeln!(s, r#"<circle cx="{px}" cy="{py}" r="3" fill="{colour}"/>"#);
                }
            }
        }
        let ly = TOP + 10.0 + i as f64 * 20.0;
        let lx = LEFT + plot_w + 15.0;
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" y1="{ly}" x2="{:.1}" y2="{ly}" stroke="{colour}" stroke-width="2"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            lx + 20.0,
            lx + 26.0,
            ly + 4.0,
            escape(name)
        );
    }
    s.push_str("</svg>\n");
    s
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
