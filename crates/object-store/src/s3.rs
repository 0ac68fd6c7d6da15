//! Amazon S3 (or anything speaking its API: MinIO, an emulator) as the object store.
//!
//! The bucket's event notifications, configured on the bucket (by Terraform in AWS, by the
//! test set-up against an emulator), deliver `ObjectCreated`/`ObjectRemoved` to the
//! documents queue: this store only reads and writes objects.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{Event, NotificationConfiguration, QueueConfiguration};

use rag_aws::AwsConfig;
use tokio::sync::OnceCell;

use crate::{ObjectInfo, ObjectStore, ObjectStoreError, StoredObject, check_key};

#[derive(Debug)]
pub struct S3ObjectStore {
    aws: AwsConfig,
    client: OnceCell<Client>,
    bucket: String,
    force_path_style: bool,
}

impl S3ObjectStore {
    /// A store for `bucket`; talks to nothing until first used.
    pub fn new(aws: AwsConfig, bucket: &str, force_path_style: bool) -> Self {
        Self {
            aws,
            client: OnceCell::new(),
            bucket: bucket.to_owned(),
            force_path_style,
        }
    }

    /// The SDK client, also for set-up that is not the store's business (tests create
    /// buckets and configure notifications with it).
    pub async fn client(&self) -> &Client {
        self.client
            .get_or_init(|| async {
                let config = aws_sdk_s3::config::Builder::from(self.aws.sdk_config().await)
                    .force_path_style(self.force_path_style)
                    .build();
                Client::from_conf(config)
            })
            .await
    }
}

impl S3ObjectStore {
    /// Creates the bucket if it is missing and has it notify the queue `queue_arn` of every
    /// object created or removed: what Terraform sets up in AWS, for an emulator or a
    /// development account (`ragctl aws-setup`). Idempotent.
    pub async fn create_bucket_notifying(&self, queue_arn: &str) -> Result<(), ObjectStoreError> {
        let client = self.client().await;
        if self.health().await.is_err() {
            match client.create_bucket().bucket(&self.bucket).send().await {
                Ok(_) => {}
                Err(e)
                    if e.as_service_error().is_some_and(|e| {
                        e.is_bucket_already_owned_by_you() || e.is_bucket_already_exists()
                    }) => {}
                Err(e) => return Err(unavailable("CreateBucket", e)),
            }
        }
        let queue = QueueConfiguration::builder()
            .queue_arn(queue_arn)
            .events(Event::S3ObjectCreated)
            .events(Event::S3ObjectRemoved)
            .build()
            .map_err(|e| ObjectStoreError::Unavailable(e.to_string()))?;
        client
            .put_bucket_notification_configuration()
            .bucket(&self.bucket)
            .notification_configuration(
                NotificationConfiguration::builder()
                    .queue_configurations(queue)
                    .build(),
            )
            .send()
            .await
            .map(|_| ())
            .map_err(|e| unavailable("PutBucketNotificationConfiguration", e))
    }
}

/// Any failure to talk to S3 leaves the caller able to retry: the store is unavailable.
fn unavailable<E, R>(operation: &str, e: SdkError<E, R>) -> ObjectStoreError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    ObjectStoreError::Unavailable(format!("S3 {operation}: {}", DisplayErrorContext(e)))
}

fn millis(t: Option<&DateTime>) -> i64 {
    t.and_then(|t| t.to_millis().ok()).unwrap_or(0)
}

/// S3 returns ETags quoted; the store's callers get the bare value, as from the local store.
fn bare_etag(etag: Option<&str>) -> String {
    etag.unwrap_or_default().trim_matches('"').to_owned()
}

#[async_trait::async_trait]
impl ObjectStore for S3ObjectStore {
    fn bucket(&self) -> &str {
        &self.bucket
    }

    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        metadata: BTreeMap<String, String>,
    ) -> Result<ObjectInfo, ObjectStoreError> {
        check_key(key)?;
        let size = bytes.len() as u64;
        let output = self
            .client()
            .await
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(bytes))
            .set_metadata(Some(metadata.into_iter().collect::<HashMap<_, _>>()))
            .send()
            .await
            .map_err(|e| unavailable("PutObject", e))?;
        Ok(ObjectInfo {
            key: key.to_owned(),
            size,
            etag: bare_etag(output.e_tag()),
            last_modified_ms: rag_core::now_ms(),
        })
    }

    async fn get(&self, key: &str) -> Result<Option<StoredObject>, ObjectStoreError> {
        check_key(key)?;
        let output = match self
            .client()
            .await
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(output) => output,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(unavailable("GetObject", e)),
        };
        let etag = bare_etag(output.e_tag());
        let last_modified_ms = millis(output.last_modified());
        let metadata = output
            .metadata()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let bytes = output
            .body
            .collect()
            .await
            .map_err(|e| ObjectStoreError::Unavailable(format!("S3 GetObject body: {e}")))?
            .to_vec();
        Ok(Some(StoredObject {
            info: ObjectInfo {
                key: key.to_owned(),
                size: bytes.len() as u64,
                etag,
                last_modified_ms,
            },
            bytes,
            metadata,
        }))
    }

    async fn delete(&self, key: &str) -> Result<(), ObjectStoreError> {
        check_key(key)?;
        self.client()
            .await
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| unavailable("DeleteObject", e))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, ObjectStoreError> {
        let mut objects = Vec::new();
        let mut continuation = None;
        loop {
            let page = self
                .client()
                .await
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(continuation.take())
                .send()
                .await
                .map_err(|e| unavailable("ListObjectsV2", e))?;
            objects.extend(page.contents().iter().filter_map(|o| {
                Some(ObjectInfo {
                    key: o.key()?.to_owned(),
                    size: o.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                    etag: bare_etag(o.e_tag()),
                    last_modified_ms: millis(o.last_modified()),
                })
            }));
            match page.next_continuation_token() {
                Some(token) if page.is_truncated() == Some(true) => {
                    continuation = Some(token.to_owned());
                }
                _ => break,
            }
        }
        // S3 lists in UTF-8 binary order, which is `str`'s order; sort anyway so every
        // implementation of the trait agrees whatever the server does.
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    async fn health(&self) -> Result<(), ObjectStoreError> {
        self.client()
            .await
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| match e.as_service_error().and_then(|s| s.code()) {
                Some(code) => {
                    ObjectStoreError::Unavailable(format!("S3 HeadBucket {}: {code}", self.bucket))
                }
                None => unavailable("HeadBucket", e),
            })
    }
}
