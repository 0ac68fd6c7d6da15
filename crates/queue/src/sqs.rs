//! Amazon SQS (or an emulator speaking its API) behind the [`Queue`] trait.
//!
//! SQS itself gives the semantics the trait documents: at-least-once delivery, a visibility
//! timeout, redelivery, and a dead-letter queue after `maxReceiveCount` receives (the
//! queue's redrive policy). What this adapter adds:
//! - the queue's URL and its dead-letter queue's are looked up on first use, and with
//!   `create_missing` both are created (the dead-letter queue as `<name>-dlq`);
//! - bodies that SQS cannot carry (binary protobuf, text with characters outside SQS's
//!   allowed set) travel base64-encoded, marked by [`BODY_ENCODING_ATTRIBUTE`];
//! - [`Queue::dead_letter`] sends the message to the dead-letter queue with its reason and
//!   then deletes it, as SQS has no "move now" call.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageAttributeValue, MessageSystemAttributeName,
    QueueAttributeName, SendMessageBatchRequestEntry,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rag_aws::AwsConfig;
use tokio::sync::OnceCell;

use crate::{
    DEAD_LETTER_REASON_ATTRIBUTE, Delivery, MAX_MESSAGE_BYTES, Message, Queue, QueueError,
    QueueOptions, QueueStats,
};

/// Present (value `base64`) on a message whose body was base64-encoded for transport.
pub const BODY_ENCODING_ATTRIBUTE: &str = "rag-body-encoding";

/// SQS's largest batch, in entries.
const MAX_BATCH_ENTRIES: usize = 10;
/// SQS's longest long poll.
const MAX_WAIT_SECS: u64 = 20;
/// How long dead letters are kept (SQS's maximum, 14 days).
const DEAD_LETTER_RETENTION_SECS: u32 = 14 * 24 * 3600;

#[derive(Debug)]
pub struct SqsQueue {
    aws: AwsConfig,
    name: String,
    options: QueueOptions,
    create_missing: bool,
    resolved: OnceCell<Resolved>,
}

#[derive(Debug)]
struct Resolved {
    client: Client,
    url: String,
    dead_letter_url: Option<String>,
}

impl SqsQueue {
    /// The queue called `name`; nothing is looked up or created until first used.
    pub fn new(aws: AwsConfig, name: &str, options: QueueOptions, create_missing: bool) -> Self {
        Self {
            aws,
            name: name.to_owned(),
            options,
            create_missing,
            resolved: OnceCell::new(),
        }
    }

    /// The queue's ARN, which S3 event notifications and IAM policies name.
    pub async fn arn(&self) -> Result<String, QueueError> {
        let resolved = self.resolved().await?;
        queue_arn(&resolved.client, &resolved.url).await
    }

    async fn resolved(&self) -> Result<&Resolved, QueueError> {
        self.resolved.get_or_try_init(|| self.resolve()).await
    }

    async fn resolve(&self) -> Result<Resolved, QueueError> {
        let client = Client::new(self.aws.sdk_config().await);
        let url = if self.create_missing {
            self.create(&client).await?
        } else {
            queue_url(&client, &self.name).await?
        };
        let policy = client
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .send()
            .await
            .map_err(|e| unavailable("GetQueueAttributes", e))?
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::RedrivePolicy).cloned());
        let dead_letter_url = match policy.as_deref().map(RedrivePolicy::parse).transpose()? {
            Some(policy) => {
                if policy.max_receive_count != self.options.max_receives {
                    tracing::warn!(
                        queue = %self.name,
                        configured = self.options.max_receives,
                        queue_has = policy.max_receive_count,
                        "the queue's redrive policy decides how often a message is received"
                    );
                }
                Some(queue_url(&client, policy.dead_letter_queue_name()).await?)
            }
            None => {
                tracing::warn!(queue = %self.name, "the queue has no redrive policy: no dead-letter queue");
                None
            }
        };
        Ok(Resolved {
            client,
            url,
            dead_letter_url,
        })
    }

    /// Creates the dead-letter queue, then the queue with a redrive policy to it; a queue
    /// that exists already (with whatever attributes) is used as it is.
    async fn create(&self, client: &Client) -> Result<String, QueueError> {
        let dead_letter_name = format!("{}-dlq", self.name);
        let dead_letter_url = create_queue(
            client,
            &dead_letter_name,
            vec![(
                QueueAttributeName::MessageRetentionPeriod,
                DEAD_LETTER_RETENTION_SECS.to_string(),
            )],
        )
        .await?;
        let arn = queue_arn(client, &dead_letter_url).await?;
        let policy = serde_json::json!({
            "deadLetterTargetArn": arn,
            "maxReceiveCount": self.options.max_receives,
        });
        create_queue(
            client,
            &self.name,
            vec![
                (
                    QueueAttributeName::VisibilityTimeout,
                    self.options.visibility_timeout.as_secs().to_string(),
                ),
                (QueueAttributeName::RedrivePolicy, policy.to_string()),
            ],
        )
        .await
    }

    fn dead_letter_url<'a>(&self, resolved: &'a Resolved) -> Result<&'a str, QueueError> {
        resolved.dead_letter_url.as_deref().ok_or_else(|| {
            QueueError::InvalidOptions(format!(
                "queue {} has no redrive policy, so no dead-letter queue",
                self.name
            ))
        })
    }
}

async fn queue_arn(client: &Client, url: &str) -> Result<String, QueueError> {
    client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| unavailable("GetQueueAttributes", e))?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .ok_or_else(|| QueueError::Unavailable(format!("{url} has no ARN")))
}

async fn queue_url(client: &Client, name: &str) -> Result<String, QueueError> {
    client
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .map_err(|e| unavailable(&format!("GetQueueUrl {name}"), e))?
        .queue_url()
        .map(str::to_owned)
        .ok_or_else(|| QueueError::Unavailable(format!("SQS returned no URL for {name}")))
}

async fn create_queue(
    client: &Client,
    name: &str,
    attributes: Vec<(QueueAttributeName, String)>,
) -> Result<String, QueueError> {
    let created = client
        .create_queue()
        .queue_name(name)
        .set_attributes(Some(attributes.into_iter().collect()))
        .send()
        .await;
    match created {
        Ok(output) => output
            .queue_url()
            .map(str::to_owned)
            .ok_or_else(|| QueueError::Unavailable(format!("SQS returned no URL for {name}"))),
        // Created earlier with other attributes: use it as it is.
        Err(e)
            if error_code(&e).is_some_and(|c| {
                c.contains("QueueAlreadyExists") || c.contains("QueueNameExists")
            }) =>
        {
            queue_url(client, name).await
        }
        Err(e) => Err(unavailable(&format!("CreateQueue {name}"), e)),
    }
}

/// The part of a redrive policy the adapter needs.
#[derive(Debug, PartialEq, Eq)]
struct RedrivePolicy {
    dead_letter_target_arn: String,
    max_receive_count: u32,
}

impl RedrivePolicy {
    fn parse(json: &str) -> Result<Self, QueueError> {
        let value: serde_json::Value = serde_json::from_str(json)
            .map_err(|e| QueueError::InvalidOptions(format!("redrive policy {json:?}: {e}")))?;
        let arn = value["deadLetterTargetArn"].as_str();
        // SQS returns the count as a number; policies written by hand may hold a string.
        let count = match &value["maxReceiveCount"] {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        };
        match (arn, count.and_then(|c| u32::try_from(c).ok())) {
            (Some(arn), Some(max_receive_count)) => Ok(Self {
                dead_letter_target_arn: arn.to_owned(),
                max_receive_count,
            }),
            _ => Err(QueueError::InvalidOptions(format!(
                "redrive policy {json:?} lacks deadLetterTargetArn or maxReceiveCount"
            ))),
        }
    }

    /// `arn:aws:sqs:<region>:<account>:<name>` → `<name>`.
    fn dead_letter_queue_name(&self) -> &str {
        self.dead_letter_target_arn
            .rsplit(':')
            .next()
            .unwrap_or_default()
    }
}

fn error_code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    e.as_service_error().and_then(|s| s.code())
}

fn unavailable<E, R>(operation: &str, e: SdkError<E, R>) -> QueueError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    QueueError::Unavailable(format!("SQS {operation}: {}", DisplayErrorContext(e)))
}

/// A receipt that no longer names an in-flight message is stale, as on the local queue.
fn receipt_error<E, R>(operation: &str, e: SdkError<E, R>) -> QueueError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match error_code(&e) {
        Some(
            "ReceiptHandleIsInvalid"
            | "AWS.SimpleQueueService.MessageNotInflight"
            | "MessageNotInflight"
            | "InvalidParameterValue",
        ) => QueueError::StaleReceipt,
        _ => unavailable(operation, e),
    }
}

/// The characters an SQS message body may hold.
fn sqs_allows(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// The body as SQS carries it, and whether it had to be base64-encoded.
fn encode_body(body: &[u8]) -> (String, bool) {
    match std::str::from_utf8(body) {
        Ok(text) if text.chars().all(sqs_allows) => (text.to_owned(), false),
        _ => (BASE64.encode(body), true),
    }
}

/// A message as SQS will carry it; its size counted as SQS counts it.
struct Outgoing {
    body: String,
    attributes: HashMap<String, MessageAttributeValue>,
    /// As SQS counts it: the body, and the attributes' names, data type and values.
    size: usize,
}

impl Outgoing {
    fn new(message: Message) -> Result<Self, QueueError> {
        let (body, encoded) = encode_body(&message.body);
        let mut attributes = message.attributes;
        attributes.remove(BODY_ENCODING_ATTRIBUTE);
        if encoded {
            attributes.insert(BODY_ENCODING_ATTRIBUTE.to_owned(), "base64".to_owned());
        }
        let size = body.len()
            + attributes
                .iter()
                .map(|(k, v)| k.len() + "String".len() + v.len())
                .sum::<usize>();
        if size > MAX_MESSAGE_BYTES {
            return Err(QueueError::MessageTooLarge {
                size,
                limit: MAX_MESSAGE_BYTES,
            });
        }
        let attributes = attributes
            .into_iter()
            .map(|(k, v)| {
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(v)
                    .build()
                    .map(|value| (k, value))
                    .map_err(|e| QueueError::InvalidOptions(e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            body,
            attributes,
            size,
        })
    }
}

fn delivery(message: &aws_sdk_sqs::types::Message) -> Result<Delivery, QueueError> {
    let message_id = message.message_id().unwrap_or_default().to_owned();
    let mut attributes: BTreeMap<String, String> = message
        .message_attributes()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.string_value()?.to_owned())))
        .collect();
    let raw = message.body().unwrap_or_default();
    let body = if attributes.remove(BODY_ENCODING_ATTRIBUTE).as_deref() == Some("base64") {
        BASE64.decode(raw).map_err(|e| QueueError::Corrupt {
            message_id: message_id.clone(),
            reason: format!("base64 body: {e}"),
        })?
    } else {
        raw.as_bytes().to_vec()
    };
    let system = |name: MessageSystemAttributeName| {
        message
            .attributes()
            .and_then(|a| a.get(&name))
            .and_then(|v| v.parse::<i64>().ok())
    };
    Ok(Delivery {
        message_id,
        receipt: message.receipt_handle().unwrap_or_default().to_owned(),
        body,
        attributes,
        receive_count: system(MessageSystemAttributeName::ApproximateReceiveCount)
            .and_then(|c| u32::try_from(c).ok())
            .unwrap_or(1),
        enqueued_at_ms: system(MessageSystemAttributeName::SentTimestamp).unwrap_or(0),
    })
}

impl SqsQueue {
    async fn receive_from(
        &self,
        client: &Client,
        url: &str,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<Delivery>, QueueError> {
        let output = client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(i32::try_from(max.clamp(1, MAX_BATCH_ENTRIES)).unwrap_or(1))
            .wait_time_seconds(
                i32::try_from(
                    wait.as_millis()
                        .div_ceil(1000)
                        .min(u128::from(MAX_WAIT_SECS)),
                )
                .unwrap_or(0),
            )
            .visibility_timeout(i32::try_from(visibility.as_secs()).unwrap_or(i32::MAX))
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| unavailable("ReceiveMessage", e))?;
        output.messages().iter().map(delivery).collect()
    }
}

#[async_trait]
impl Queue for SqsQueue {
    fn name(&self) -> &str {
        &self.name
    }

    fn visibility_timeout(&self) -> Duration {
        self.options.visibility_timeout
    }

    async fn send(&self, message: Message) -> Result<String, QueueError> {
        let outgoing = Outgoing::new(message)?;
        let resolved = self.resolved().await?;
        let output = resolved
            .client
            .send_message()
            .queue_url(&resolved.url)
            .message_body(outgoing.body)
            .set_message_attributes(Some(outgoing.attributes).filter(|a| !a.is_empty()))
            .send()
            .await
            .map_err(|e| unavailable("SendMessage", e))?;
        Ok(output.message_id().unwrap_or_default().to_owned())
    }

    /// In batches of up to ten entries and 256 KiB. Not atomic on SQS: when an error is
    /// returned, some of the messages may have been sent (consumers are idempotent).
    async fn send_batch(&self, messages: Vec<Message>) -> Result<Vec<String>, QueueError> {
        let outgoing = messages
            .into_iter()
            .map(Outgoing::new)
            .collect::<Result<Vec<_>, _>>()?;
        let resolved = self.resolved().await?;
        let mut ids = Vec::with_capacity(outgoing.len());
        let mut pending = outgoing.into_iter().peekable();
        while pending.peek().is_some() {
            let mut entries = Vec::new();
            let mut bytes = 0;
            while let Some(next) = pending.peek() {
                if entries.len() == MAX_BATCH_ENTRIES
                    || (!entries.is_empty() && bytes + next.size > MAX_MESSAGE_BYTES)
                {
                    break;
                }
                let Some(message) = pending.next() else { break };
                bytes += message.size;
                let entry = SendMessageBatchRequestEntry::builder()
                    .id(entries.len().to_string())
                    .message_body(message.body)
                    .set_message_attributes(Some(message.attributes).filter(|a| !a.is_empty()))
                    .build()
                    .map_err(|e| QueueError::InvalidOptions(e.to_string()))?;
                entries.push(entry);
            }
            let count = entries.len();
            let output = resolved
                .client
                .send_message_batch()
                .queue_url(&resolved.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| unavailable("SendMessageBatch", e))?;
            if let Some(failed) = output.failed().first() {
                return Err(QueueError::Unavailable(format!(
                    "SQS SendMessageBatch: {} of {count} entries failed, e.g. {}: {}",
                    output.failed().len(),
                    failed.code(),
                    failed.message().unwrap_or_default()
                )));
            }
            let mut sent: Vec<_> = output.successful().iter().collect();
            sent.sort_by_key(|s| s.id().parse::<usize>().unwrap_or(usize::MAX));
            ids.extend(sent.into_iter().map(|s| s.message_id().to_owned()));
        }
        Ok(ids)
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let resolved = self.resolved().await?;
        self.receive_from(
            &resolved.client,
            &resolved.url,
            max,
            wait,
            self.options.visibility_timeout,
        )
        .await
    }

    async fn ack(&self, receipt: &str) -> Result<(), QueueError> {
        let resolved = self.resolved().await?;
        resolved
            .client
            .delete_message()
            .queue_url(&resolved.url)
            .receipt_handle(receipt)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| receipt_error("DeleteMessage", e))
    }

    /// In calls of up to ten entries.
    async fn ack_batch(&self, receipts: &[String]) -> Vec<Result<(), QueueError>> {
        let resolved = match self.resolved().await {
            Ok(resolved) => resolved,
            Err(e) => {
                let reason = e.to_string();
                return receipts
                    .iter()
                    .map(|_| Err(QueueError::Unavailable(reason.clone())))
                    .collect();
            }
        };
        let mut results = Vec::with_capacity(receipts.len());
        for chunk in receipts.chunks(MAX_BATCH_ENTRIES) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, receipt)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(receipt)
                        .build()
                })
                .collect::<Result<Vec<_>, _>>();
            let sent = match entries {
                Ok(entries) => resolved
                    .client
                    .delete_message_batch()
                    .queue_url(&resolved.url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(|e| unavailable("DeleteMessageBatch", e).to_string()),
                Err(e) => Err(e.to_string()),
            };
            match sent {
                Ok(output) => {
                    let failed: HashMap<&str, &str> =
                        output.failed().iter().map(|f| (f.id(), f.code())).collect();
                    results.extend((0..chunk.len()).map(
                        |i| match failed.get(i.to_string().as_str()) {
                            None => Ok(()),
                            Some(&("ReceiptHandleIsInvalid" | "InvalidParameterValue")) => {
                                Err(QueueError::StaleReceipt)
                            }
                            Some(code) => Err(QueueError::Unavailable(format!(
                                "SQS DeleteMessageBatch entry failed: {code}"
                            ))),
                        },
                    ));
                }
                Err(reason) => results.extend(
                    chunk
                        .iter()
                        .map(|_| Err(QueueError::Unavailable(reason.clone()))),
                ),
            }
        }
        results
    }

    async fn extend_visibility(&self, receipt: &str, timeout: Duration) -> Result<(), QueueError> {
        let resolved = self.resolved().await?;
        resolved
            .client
            .change_message_visibility()
            .queue_url(&resolved.url)
            .receipt_handle(receipt)
            .visibility_timeout(i32::try_from(timeout.as_secs()).unwrap_or(i32::MAX))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| receipt_error("ChangeMessageVisibility", e))
    }

    async fn dead_letter(&self, delivery: &Delivery, reason: &str) -> Result<(), QueueError> {
        let resolved = self.resolved().await?;
        let dead_letter_url = self.dead_letter_url(resolved)?;
        let mut message = Message {
            body: delivery.body.clone(),
            attributes: delivery.attributes.clone(),
        };
        message
            .attributes
            .insert(DEAD_LETTER_REASON_ATTRIBUTE.to_owned(), reason.to_owned());
        let outgoing = match Outgoing::new(message.clone()) {
            Ok(outgoing) => outgoing,
            // A reason too long for the message: keep its start.
            Err(QueueError::MessageTooLarge { .. }) => {
                let short: String = reason.chars().take(256).collect();
                message
                    .attributes
                    .insert(DEAD_LETTER_REASON_ATTRIBUTE.to_owned(), short);
                Outgoing::new(message)?
            }
            Err(e) => return Err(e),
        };
        resolved
            .client
            .send_message()
            .queue_url(dead_letter_url)
            .message_body(outgoing.body)
            .set_message_attributes(Some(outgoing.attributes))
            .send()
            .await
            .map_err(|e| unavailable("SendMessage (dead letter)", e))?;
        // Sent first, deleted second: a crash in between leaves a duplicate, never a loss.
        self.ack(&delivery.receipt).await
    }

    async fn stats(&self) -> Result<QueueStats, QueueError> {
        let resolved = self.resolved().await?;
        let counts = |url: &str| {
            let client = resolved.client.clone();
            let url = url.to_owned();
            async move {
                let output = client
                    .get_queue_attributes()
                    .queue_url(url)
                    .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                    .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                    .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
                    .send()
                    .await
                    .map_err(|e| unavailable("GetQueueAttributes", e))?;
                let get = |name: QueueAttributeName| {
                    output
                        .attributes()
                        .and_then(|a| a.get(&name))
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0)
                };
                Ok::<_, QueueError>((
                    get(QueueAttributeName::ApproximateNumberOfMessages),
                    get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                        + get(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
                ))
            }
        };
        let (visible, in_flight) = counts(&resolved.url).await?;
        let dead_lettered = match &resolved.dead_letter_url {
            Some(url) => counts(url).await?.0,
            None => 0,
        };
        Ok(QueueStats {
            visible,
            in_flight,
            dead_lettered,
            // SQS publishes the oldest message's age only to CloudWatch.
            oldest_visible_age_ms: None,
        })
    }

    /// Peeks at the dead-letter queue (receives with a visibility timeout of zero, so the
    /// messages stay there); SQS samples its servers, so a short poll may return fewer.
    async fn dead_letters(&self, max: usize) -> Result<Vec<Delivery>, QueueError> {
        let resolved = self.resolved().await?;
        let url = self.dead_letter_url(resolved)?;
        let mut seen: BTreeMap<String, Delivery> = BTreeMap::new();
        for _ in 0..3 {
            if seen.len() >= max {
                break;
            }
            let got = self
                .receive_from(
                    &resolved.client,
                    url,
                    max - seen.len(),
                    Duration::ZERO,
                    Duration::ZERO,
                )
                .await?;
            if got.is_empty() {
                break;
            }
            for mut d in got {
                d.receipt.clear();
                // Moved here by SQS's redrive, not by `dead_letter`: say why.
                d.attributes
                    .entry(DEAD_LETTER_REASON_ATTRIBUTE.to_owned())
                    .or_insert_with(|| {
                        format!("received more than {} times", self.options.max_receives)
                    });
                seen.entry(d.message_id.clone()).or_insert(d);
            }
        }
        let mut letters: Vec<Delivery> = seen.into_values().collect();
        letters.sort_by_key(|d| d.enqueued_at_ms);
        letters.truncate(max);
        Ok(letters)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_sqs_cannot_carry_are_base64() {
        assert_eq!(
            encode_body(b"{\"a\": 1}\n"),
            ("{\"a\": 1}\n".to_owned(), false)
        );
        assert!(!encode_body("naïve ✓".as_bytes()).1);
        let binary = [0u8, 159, 146, 150, 1];
        let (text, encoded) = encode_body(&binary);
        assert!(encoded);
        assert_eq!(BASE64.decode(text).unwrap(), binary);
        // Valid UTF-8, but a control character SQS rejects.
        assert!(encode_body(b"a\x01b").1);
    }

    #[test]
    fn sizes_count_what_sqs_counts() {
        let big = Message::new(vec![b'x'; MAX_MESSAGE_BYTES]);
        assert!(Outgoing::new(big).is_ok());
        let over = Message::new(vec![b'x'; MAX_MESSAGE_BYTES]).with_attribute("k", "v");
        assert!(matches!(
            Outgoing::new(over),
            Err(QueueError::MessageTooLarge { .. })
        ));
        // Binary grows by a third when encoded.
        let binary = Message::new(vec![0u8; MAX_MESSAGE_BYTES * 3 / 4 + 100]);
        assert!(matches!(
            Outgoing::new(binary),
            Err(QueueError::MessageTooLarge { .. })
        ));
    }

    #[test]
    fn redrive_policies_parse() {
        let policy = RedrivePolicy::parse(
            r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:documents-dlq","maxReceiveCount":5}"#,
        )
        .unwrap();
        assert_eq!(policy.max_receive_count, 5);
        assert_eq!(policy.dead_letter_queue_name(), "documents-dlq");
        let text = RedrivePolicy::parse(
            r#"{"deadLetterTargetArn":"arn:aws:sqs:eu-west-1:1:q-dlq","maxReceiveCount":"3"}"#,
        )
        .unwrap();
        assert_eq!(text.max_receive_count, 3);
        assert!(RedrivePolicy::parse("{}").is_err());
        assert!(RedrivePolicy::parse("nope").is_err());
    }
}
