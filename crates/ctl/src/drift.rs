//! `ragctl drift`: whether the questions users ask are drifting away from the baseline and
//! from what the documents cover, and whether new documents land far from their domain.
//! Reads the feedback store (question embeddings) and the current index generation's
//! catalog (document centres), as the router's periodic measurement does.

use clap::Args;
use rag_config::Settings;
use rag_router::drift::{self, DomainDrift, Windows};

#[derive(Args)]
pub struct DriftArgs {
    /// The tenant to measure (default: the configured default tenant).
    #[arg(long)]
    tenant: Option<String>,
    /// Only this domain, or `all` for every domain together (default: each configured
    /// domain, and all together).
    #[arg(long)]
    domain: Option<String>,
    /// The recent window, in hours (default: `drift.recent_hours`).
    #[arg(long)]
    recent_hours: Option<u64>,
    /// The baseline window before it, in days (default: `drift.baseline_days`).
    #[arg(long)]
    baseline_days: Option<u64>,
    /// Print the reports as one JSON array.
    #[arg(long)]
    json: bool,
}

pub async fn run(mut settings: Settings, args: DriftArgs) -> anyhow::Result<()> {
    if let Some(hours) = args.recent_hours {
        settings.drift.recent_hours = hours;
    }
    if let Some(days) = args.baseline_days {
        settings.drift.baseline_days = days;
    }
    settings.validate()?;
    let feedback = rag_backends::feedback_store(&settings)?;
    let generation = rag_backends::generation::current(&settings)?;
    let catalog = rag_backends::catalog(&generation.settings)?;
    let tenant = args
        .tenant
        .unwrap_or_else(|| settings.default_tenant.clone());
    let domains = match args.domain {
        Some(domain) => vec![domain],
        None => drift::domains(&settings),
    };
    let windows = Windows::ending_at(drift::now_ms(), &settings.drift);
    let reports = drift::measure(
        feedback.as_ref(),
        catalog.as_ref(),
        &tenant,
        &domains,
        &settings.drift,
        windows,
    )
    .await;
    if args.json {
        println!("{}", serde_json::to_string(&reports)?);
    } else {
        for report in &reports {
            print!("{}", describe(report));
        }
    }
    Ok(())
}

/// A report as a few readable lines.
fn describe(report: &DomainDrift) -> String {
    let mut out = format!("{}/{}\n", report.tenant, report.domain);
    match &report.queries {
        Ok(q) => {
            out += &format!(
                "  questions: {} (baseline {}, recent {}): KS D = {:.3}, p = {:.2e}\n",
                if q.drifted { "DRIFTED" } else { "stable" },
                q.baseline,
                q.recent,
                q.statistic,
                q.p_value
            );
            for feature in &q.features {
                out += &format!(
                    "    {:<28} D = {:.3}  p = {:.2e}\n",
                    feature.name, feature.ks.statistic, feature.ks.p_value
                );
            }
        }
        Err(why) => out += &format!("  questions: not measured ({why})\n"),
    }
    match &report.corpus {
        Ok(c) => {
            out += &format!(
                "  documents: {} (existing {}, new {}): centre moved {:.4}; median distance {:.3} → {:.3}",
                if c.drifted { "DRIFTED" } else { "stable" },
                c.existing_distance.count,
                c.new_distance.count,
                c.centroid_shift,
                c.existing_distance.median,
                c.new_distance.median,
            );
            if let Some(ks) = &c.ks {
                out += &format!(", KS D = {:.3}, p = {:.2e}", ks.statistic, ks.p_value);
            }
            out += "\n";
        }
        Err(why) => out += &format!("  documents: not measured ({why})\n"),
    }
    out
}
