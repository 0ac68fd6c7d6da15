//! The AWS SDK's shared configuration, built from [`AwsSettings`] on first use.
//!
//! Owns: region, endpoint override (an emulator, MinIO), credentials, and the HTTPS client
//! (rustls on ring, so no C crypto library is built). The S3, SQS and Bedrock clients are
//! built from the [`SdkConfig`] an [`AwsConfig`] loads. Must not know any service's API.
//!
//! Loading is asynchronous and lazy, so backends can be constructed synchronously at
//! start-up and reach AWS only when first used (a dependency that is down then shows as an
//! unavailable backend, retried, instead of a process that cannot start).

use std::sync::Arc;
use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use rag_config::{AwsCredentials, AwsSettings};
use tokio::sync::OnceCell;

pub use aws_config::SdkConfig;

/// The key pair handed to emulators, which accept any.
const EMULATOR_KEY_ID: &str = "testing";
const EMULATOR_SECRET: &str = "testing";

/// Every AWS call gives up on a connection after this long...
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// ... and on an attempt after this long: above SQS's longest poll (20 s) and the time to move
/// the largest upload; a client (Bedrock's) may set a shorter one of its own.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);

/// A cheaply cloned handle on the process's AWS configuration; clones share one load.
#[derive(Clone, Debug)]
pub struct AwsConfig {
    settings: Arc<AwsSettings>,
    loaded: Arc<OnceCell<SdkConfig>>,
}

impl AwsConfig {
    pub fn new(settings: &AwsSettings) -> Self {
        Self {
            settings: Arc::new(settings.clone()),
            loaded: Arc::new(OnceCell::new()),
        }
    }

    /// The SDK configuration, loaded on the first call. Credentials are resolved later, by
    /// the first request that needs them.
    pub async fn sdk_config(&self) -> &SdkConfig {
        self.loaded.get_or_init(|| load(&self.settings)).await
    }
}

async fn load(settings: &AwsSettings) -> SdkConfig {
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(settings.region.clone()))
        .http_client(http_client)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .build(),
        );
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url.clone());
    }
    if settings.credentials == AwsCredentials::Emulator {
        loader = loader.credentials_provider(Credentials::new(
            EMULATOR_KEY_ID,
            EMULATOR_SECRET,
            None,
            None,
            "emulator",
        ));
    }
    loader.load().await
}

/// What tests need to reach the local emulator.
pub mod testing {
    use rag_config::{AwsCredentials, AwsSettings};

    /// Names the emulator's endpoint; `scripts/with-aws.sh` (run by `make test`) sets it.
    pub const ENDPOINT_VARIABLE: &str = "RAG_TEST_AWS_ENDPOINT";

    /// Settings for the emulator named by [`ENDPOINT_VARIABLE`], or why there is none.
    pub fn emulator_settings() -> Result<AwsSettings, String> {
        let endpoint = std::env::var(ENDPOINT_VARIABLE).map_err(|_| {
            format!(
                "{ENDPOINT_VARIABLE} is not set: run the tests through scripts/with-aws.sh \
                 (make test does), which starts a local S3/SQS emulator"
            )
        })?;
        Ok(AwsSettings {
            region: "us-east-1".into(),
            endpoint_url: Some(endpoint),
            credentials: AwsCredentials::Emulator,
        })
    }
}
