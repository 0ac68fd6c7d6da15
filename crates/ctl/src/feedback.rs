//! `ragctl feedback routing`: what the users' ratings say about the routing threshold. Reads
//! the feedback store the configuration names (SQLite in the data directory, or PostgreSQL).

use clap::Args;
use rag_backends::rag_feedback::routing_report;
use rag_config::Settings;

#[derive(Args)]
pub struct RoutingArgs {
    /// The tenant whose answers to look at (default: the configured default tenant).
    #[arg(long)]
    tenant: Option<String>,
    /// The routing threshold the answers were routed with (default: the configured
    /// `router.routing.strong_threshold`; domains with their own threshold are left out).
    #[arg(long)]
    threshold: Option<f32>,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

pub async fn routing(settings: Settings, args: RoutingArgs) -> anyhow::Result<()> {
    let store = rag_backends::feedback_store(&settings)?;
    let tenant = args
        .tenant
        .unwrap_or_else(|| settings.default_tenant.clone());
    let rated = store.rated_answers(&tenant).await?;
    let threshold = args
        .threshold
        .unwrap_or(settings.router.routing.strong_threshold);
    let report = routing_report(&rated, threshold);
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{report}");
    }
    Ok(())
}
