//! The retriever binary: hybrid search over the vector store and the BM25 index.

fn main() -> anyhow::Result<()> {
    // Before the runtime starts its threads: see `pin_compute_threads`.
    rag_backends::rag_embeddings::pin_compute_threads();
    tokio::runtime::Runtime::new()?.block_on(serve())
}

async fn serve() -> anyhow::Result<()> {
    let settings = rag_config::Settings::load(
        rag_config::config_file_from_env().as_deref(),
        &rag_config::Environment::Process,
    )?;
    rag_telemetry::init(&settings.telemetry, "retriever");
    rag_telemetry::metrics::serve_if_configured(&settings.telemetry).await?;
    let listener = tokio::net::TcpListener::bind(settings.retriever.listen).await?;
    rag_retriever::run(settings, listener, rag_telemetry::shutdown_signal()).await?;
    rag_telemetry::trace::shutdown();
    Ok(())
}
