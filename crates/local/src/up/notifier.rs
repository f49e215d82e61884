//! The desk's notifications in `energy up` (Slack's part in AWS): one per key, kept in the
//! database, appended to `notifications.jsonl`, and sent to Slack or printed.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use energy_core::ports::{Clock, Notification, Notifier, PortError};
use serde_json::json;

use crate::up::shared::{Shared, port};

/// How long a message waits for its turn at the Slack webhook: as long as a post may take.
const SLACK_TURN: std::time::Duration = crate::up::HTTP_TIMEOUT;

/// Where notifications go.
pub enum Sink {
    /// The console (and the log file).
    Console,
    /// A Slack incoming webhook (and the log file), one message at a time: Slack takes about
    /// one a second per webhook, and in AWS notify-slack's reserved concurrency of 1
    /// (`NotifySlackConcurrency`) keeps its posts in a row, however many deliveries are in flight.
    Slack {
        url: String,
        http: reqwest::Client,
        one_at_a_time: tokio::sync::Mutex<()>,
    },
}

/// The desk's notifications: one per key, kept in the database, appended to
/// `notifications.jsonl`, and sent to Slack or printed.
pub struct LocalNotifier {
    pub shared: Arc<Shared>,
    pub log: PathBuf,
    pub sink: Sink,
    /// One append at a time, from blocking threads.
    pub log_lock: Arc<std::sync::Mutex<()>>,
}

impl LocalNotifier {
    /// Rewrites the log from the database, the source of truth: a crash between the database
    /// write and the append neither loses nor duplicates a line.
    pub fn reconcile(&self) -> anyhow::Result<()> {
        let lines = self.shared.db.notifications()?;
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let tmp = self.log.with_extension("jsonl.tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &self.log)?;
        Ok(())
    }
}

#[async_trait]
impl Notifier for LocalNotifier {
    async fn notify(&self, n: &Notification) -> Result<(), PortError> {
        if let Sink::Slack {
            url,
            http,
            one_at_a_time,
        } = &self.sink
        {
            // The turn is waited for no longer than a post may take (the client's timeout):
            // behind a webhook that hangs, a delivery gives its place in flight back and is
            // retried later, instead of holding it while every message before it times out.
            let _turn = tokio::time::timeout(SLACK_TURN, one_at_a_time.lock())
                .await
                .map_err(|_| {
                    PortError::transient(
                        "slack",
                        "another message is still being posted (one at a time)".to_string(),
                    )
                })?;
            // What the message tells must be committed before it leaves (see `Db::run_early`).
            self.shared.db.flush().await;
            let response = http
                .post(url)
                .json(&n.payload)
                .send()
                .await
                .map_err(|e| PortError::transient("slack", e.to_string()))?;
            let status = response.status();
            if !status.is_success() {
                let body = response.text().await.unwrap_or_default();
                return Err(PortError {
                    what: "slack",
                    message: format!("{status}: {body}"),
                    retryable: status.is_server_error() || status.as_u16() == 429,
                });
            }
        }
        let line = json!({
            "key": n.key,
            "at": self.shared.clock.now().to_string(),
            "text": n.text,
            "payload": n.payload,
        })
        .to_string();
        let (key, row) = (n.key.clone(), line.clone());
        let new = self
            .shared
            .db
            .run(move |db| db.record_notification(&key, &row))
            .await
            .map_err(port("notifications"))?;
        if new {
            let (lock, log) = (self.log_lock.clone(), self.log.clone());
            let append = move || -> std::io::Result<()> {
                let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
                let mut file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)?;
                writeln!(file, "{line}")
            };
            tokio::task::spawn_blocking(append)
                .await
                .map_err(|e| PortError::transient("notifications", e.to_string()))?
                .map_err(|e| PortError::transient("notifications", e.to_string()))?;
            if matches!(self.sink, Sink::Console) {
                println!("[slack] {}", n.text.replace('\n', "\n        "));
            }
        }
        Ok(())
    }
}
