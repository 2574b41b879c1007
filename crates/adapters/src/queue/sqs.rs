use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName};
use devops_models::EventEnvelope;

use super::{DeadLetter, Queue, QueueDepth, QueueSettings, Receipt, ReceivedMessage};
use crate::{Error, Result, aws_error};

const BACKEND: &str = "sqs";
/// SQS caps one receive at 10 messages and a long poll at 20 s.
const MAX_BATCH: i32 = 10;
const MAX_WAIT_SECS: u64 = 20;

/// SQS standard queue whose redrive policy moves a message to `<name>-dlq`
/// after `max_receives` receipts.
#[derive(Clone)]
pub struct SqsQueue {
    client: Client,
    settings: QueueSettings,
    queue_url: String,
    dlq_url: String,
}

fn secs(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}

fn secs_rounded_up(d: Duration) -> i32 {
    secs(d).saturating_add(i32::from(d.subsec_nanos() > 0))
}

impl SqsQueue {
    /// Finds the queue and its DLQ, creating both (with the redrive policy)
    /// when they don't exist yet. Queues created by Terraform are used as they are.
    pub async fn open(client: Client, settings: QueueSettings) -> Result<Self> {
        let dlq_url = Self::find_or_create(&client, &settings.dlq_name(), HashMap::new()).await?;
        let dlq_arn = client
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| aws_error(BACKEND, e))?
            .attributes
            .and_then(|mut attrs| attrs.remove(&QueueAttributeName::QueueArn))
            .ok_or_else(|| Error::backend(BACKEND, "DLQ has no ARN"))?;
        let redrive = serde_json::json!({
            "deadLetterTargetArn": dlq_arn,
            "maxReceiveCount": settings.max_receives.to_string(),
        });
        let attributes = HashMap::from([
            (QueueAttributeName::RedrivePolicy, redrive.to_string()),
            (QueueAttributeName::VisibilityTimeout, settings.visibility_timeout.as_secs().to_string()),
        ]);
        let queue_url = Self::find_or_create(&client, &settings.name, attributes).await?;
        Ok(Self { client, settings, queue_url, dlq_url })
    }

    /// The main queue's URL, for tooling that needs the raw SQS API.
    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    async fn find_or_create(
        client: &Client,
        name: &str,
        attributes: HashMap<QueueAttributeName, String>,
    ) -> Result<String> {
        match client.get_queue_url().queue_name(name).send().await {
            Ok(out) => out.queue_url.ok_or_else(|| Error::backend(BACKEND, "no queue url")),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_queue_does_not_exist()) => client
                .create_queue()
                .queue_name(name)
                .set_attributes(Some(attributes))
                .send()
                .await
                .map_err(|e| aws_error(BACKEND, e))?
                .queue_url
                .ok_or_else(|| Error::backend(BACKEND, "no queue url")),
            Err(err) => Err(aws_error(BACKEND, err)),
        }
    }

    async fn send_body(
        &self,
        queue_url: &str,
        body: &str,
        trace: &HashMap<String, String>,
        delay: Duration,
    ) -> Result<()> {
        let attributes = trace
            .iter()
            .filter_map(|(k, v)| {
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(v)
                    .build()
                    .ok()
                    .map(|a| (k.clone(), a))
            })
            .collect::<HashMap<_, _>>();
        self.client
            .send_message()
            .queue_url(queue_url)
            .message_body(body)
            .set_message_attributes((!attributes.is_empty()).then_some(attributes))
            // Whole seconds, rounded up: a copy that comes back early is
            // only deferred again.
            .set_delay_seconds((!delay.is_zero()).then(|| secs_rounded_up(delay.min(super::MAX_SEND_DELAY))))
            .send()
            .await
            .map_err(|e| aws_error(BACKEND, e))?;
        Ok(())
    }

    async fn receive_from(
        &self,
        queue_url: &str,
        max: u32,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<aws_sdk_sqs::types::Message>> {
        let out = self
            .client
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(i32::try_from(max).unwrap_or(MAX_BATCH).clamp(1, MAX_BATCH))
            .wait_time_seconds(secs(wait.min(Duration::from_secs(MAX_WAIT_SECS))))
            .visibility_timeout(secs(visibility))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| aws_error(BACKEND, e))?;
        Ok(out.messages.unwrap_or_default())
    }

    async fn change_visibility(&self, receipt: &Receipt, visibility: Duration) -> Result<()> {
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(&receipt.0)
            .visibility_timeout(secs(visibility))
            .send()
            .await
            .map_err(|e| aws_error(BACKEND, e))?;
        Ok(())
    }

    async fn approximate(&self, queue_url: &str) -> Result<u64> {
        let attrs = self
            .client
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            // Deferred events wait as delayed messages.
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(|e| aws_error(BACKEND, e))?
            .attributes
            .unwrap_or_default();
        Ok(attrs.values().filter_map(|v| v.parse::<u64>().ok()).sum())
    }
}

fn trace_attributes(message: &aws_sdk_sqs::types::Message) -> HashMap<String, String> {
    message
        .message_attributes
        .iter()
        .flatten()
        .filter_map(|(k, v)| v.string_value.clone().map(|s| (k.clone(), s)))
        .collect()
}

#[async_trait]
impl Queue for SqsQueue {
    #[tracing::instrument(name = "queue.sqs.send", skip_all, fields(event_type = %event.event_type))]
    async fn send_later(&self, event: &EventEnvelope, delay: Duration) -> Result<()> {
        let body = serde_json::to_string(event).map_err(|e| Error::Invalid(e.to_string()))?;
        let trace = event.trace_context.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        self.send_body(&self.queue_url, &body, &trace, delay).await
    }

    async fn receive(&self, max: u32, wait: Duration) -> Result<Vec<ReceivedMessage>> {
        let messages = self.receive_from(&self.queue_url, max, wait, self.settings.visibility_timeout).await?;
        Ok(messages
            .into_iter()
            .filter_map(|m| {
                let receive_count = m
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1);
                Some(ReceivedMessage {
                    message_id: m.message_id?,
                    receipt: Receipt(m.receipt_handle?),
                    receive_count,
                    body: m.body.unwrap_or_default(),
                })
            })
            .collect())
    }

    async fn ack(&self, receipt: &Receipt) -> Result<()> {
        self.client
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(&receipt.0)
            .send()
            .await
            .map_err(|e| aws_error(BACKEND, e))?;
        Ok(())
    }

    async fn extend_visibility(&self, receipt: &Receipt, by: Duration) -> Result<()> {
        self.change_visibility(receipt, by).await
    }

    async fn release(&self, receipt: &Receipt) -> Result<()> {
        self.change_visibility(receipt, Duration::ZERO).await
    }

    async fn dead_letter(&self, message: &ReceivedMessage) -> Result<()> {
        // Copy first, then delete: a crash in between duplicates, never loses.
        self.send_body(&self.dlq_url, &message.body, &HashMap::new(), Duration::ZERO).await?;
        self.ack(&message.receipt).await
    }

    async fn list_dead_letters(&self, max: u32) -> Result<Vec<DeadLetter>> {
        // A zero visibility timeout peeks without hiding the messages.
        let mut letters: Vec<DeadLetter> = Vec::new();
        let messages = self.receive_from(&self.dlq_url, max, Duration::ZERO, Duration::ZERO).await?;
        for m in messages {
            let Some(message_id) = m.message_id else { continue };
            if !letters.iter().any(|l| l.message_id == message_id) {
                letters.push(DeadLetter { message_id, body: m.body.unwrap_or_default() });
            }
        }
        Ok(letters)
    }

    async fn redrive(&self, max: u32) -> Result<u32> {
        let mut moved = 0;
        while moved < max {
            let batch =
                self.receive_from(&self.dlq_url, max - moved, Duration::ZERO, self.settings.visibility_timeout).await?;
            if batch.is_empty() {
                break;
            }
            for m in batch {
                let (Some(body), Some(receipt)) = (m.body.clone(), m.receipt_handle.clone()) else { continue };
                self.send_body(&self.queue_url, &body, &trace_attributes(&m), Duration::ZERO).await?;
                self.client
                    .delete_message()
                    .queue_url(&self.dlq_url)
                    .receipt_handle(receipt)
                    .send()
                    .await
                    .map_err(|e| aws_error(BACKEND, e))?;
                moved += 1;
            }
        }
        Ok(moved)
    }

    fn max_receives(&self) -> u32 {
        self.settings.max_receives
    }

    async fn depth(&self) -> Result<QueueDepth> {
        Ok(QueueDepth {
            active: self.approximate(&self.queue_url).await?,
            dead: self.approximate(&self.dlq_url).await?,
        })
    }

    async fn ping(&self) -> Result<()> {
        self.client
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| aws_error(BACKEND, e))?;
        Ok(())
    }
}
