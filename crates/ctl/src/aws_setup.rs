//! `ragctl aws-setup`: the bucket, the queues and the bucket's notifications the
//! configuration names, for an emulator or a development account (Terraform owns them in
//! production).

use rag_config::Settings;

pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let made = rag_backends::provision_aws(&settings).await?;
    println!(
        "bucket {} notifies queue {}; queues ready: {} (each with a -dlq)",
        made.bucket,
        made.queues.first().map(String::as_str).unwrap_or_default(),
        made.queues.join(", ")
    );
    Ok(())
}
