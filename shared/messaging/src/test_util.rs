//! Test support (feature `test-util`): what a test of a producer needs to see what reached a topic.

use std::time::Duration;

use observability::Shutdown;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::KafkaConfig;
use crate::consumer::{Consumer, HandlerError, IncomingMessage, Subscription};
use crate::error::ConsumeError;

/// How long [`TopicReader::stop`] waits for the consumer to leave its group.
const STOP_WAIT: Duration = Duration::from_secs(20);

/// Reads one topic from the beginning in the consumer group of `config` (a fresh group id starts at the start),
/// forwarding every message to the test in arrival order.
#[derive(Debug)]
pub struct TopicReader {
    messages: mpsc::UnboundedReceiver<IncomingMessage>,
    shutdown: Shutdown,
    task: JoinHandle<()>,
}

impl TopicReader {
    /// Subscribes to `topic` and starts reading in the background.
    pub fn start(config: &KafkaConfig, topic: &str) -> Result<Self, Box<ConsumeError>> {
        // Never written to: the reader accepts every message.
        let dead_letters = format!("{topic}.reader.dlq");
        let subscription = Subscription::new([topic], dead_letters).ok_or(ConsumeError::Subscription)?;
        let consumer = Consumer::new(config, subscription).map_err(|error| Box::new(error.into()))?;
        let (sender, messages) = mpsc::unbounded_channel();
        let shutdown = Shutdown::new();
        let task = tokio::spawn(consumer.run(
            move |message: IncomingMessage| {
                let sender = sender.clone();
                async move { sender.send(message).map_err(HandlerError::retry) }
            },
            shutdown.clone(),
        ));
        Ok(Self { messages, shutdown, task })
    }

    /// The next `count` messages; `None` when they did not all arrive within `deadline` of each other.
    pub async fn take(&mut self, count: usize, deadline: Duration) -> Option<Vec<IncomingMessage>> {
        let mut taken = Vec::with_capacity(count);
        while taken.len() < count {
            taken.push(tokio::time::timeout(deadline, self.messages.recv()).await.ok()??);
        }
        Some(taken)
    }

    /// Whatever else arrives until `window` passes without a message: to show that nothing more does.
    pub async fn extra(&mut self, window: Duration) -> Vec<IncomingMessage> {
        let mut extra = Vec::new();
        while let Ok(Some(message)) = tokio::time::timeout(window, self.messages.recv()).await {
            extra.push(message);
        }
        extra
    }

    /// Stops the consumer and waits (bounded) for it to leave its group.
    pub async fn stop(self) {
        self.shutdown.trigger();
        let _ = tokio::time::timeout(STOP_WAIT, self.task).await;
    }
}
