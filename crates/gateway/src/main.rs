//! The gateway binary: the public HTTP API.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = rag_config::Settings::load(
        rag_config::config_file_from_env().as_deref(),
        &rag_config::Environment::Process,
    )?;
    rag_telemetry::init(&settings.telemetry, "gateway");
    let listener = tokio::net::TcpListener::bind(settings.gateway.listen).await?;
    rag_gateway::run(settings, listener, rag_telemetry::shutdown_signal()).await?;
    rag_telemetry::trace::shutdown();
    Ok(())
}
