//! `Notifier` over a Slack incoming webhook whose URL lives in Secrets Manager.
//!
//! The URL is read once per container, on the first message, and kept; it never appears in a log
//! line or an error. A post has a timeout; a non-2xx answer is an error carrying the status
//! (retryable for 429 and 5xx).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;

/// The Secrets Manager client, for callers that read a secret of their own.
pub type SecretsClient = Client;
use energy_core::ports::{Notification, Notifier, PortError};
use tokio::sync::OnceCell;

use crate::error::sdk_error;

const WHAT: &str = "slack";

/// Reads a secret's string value once and caches it.
#[derive(Debug)]
pub struct CachedSecret {
    client: Client,
    secret_id: String,
    value: OnceCell<String>,
}

impl CachedSecret {
    pub fn new(client: Client, secret_id: impl Into<String>) -> Self {
        CachedSecret {
            client,
            secret_id: secret_id.into(),
            value: OnceCell::new(),
        }
    }

    pub async fn get(&self) -> Result<&str, PortError> {
        self.value
            .get_or_try_init(|| async {
                let out = self
                    .client
                    .get_secret_value()
                    .secret_id(&self.secret_id)
                    .send()
                    .await
                    .map_err(|e| sdk_error("secrets", e))?;
                out.secret_string()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| {
                        PortError::permanent(
                            "secrets",
                            format!("secret {} has no string value; set it", self.secret_id),
                        )
                    })
            })
            .await
            .map(String::as_str)
    }
}

/// Posts Block Kit messages to the webhook.
#[derive(Debug)]
pub struct SlackWebhook {
    url: CachedSecret,
    http: reqwest::Client,
}

impl SlackWebhook {
    pub fn new(url: CachedSecret, timeout: Duration) -> Result<Self, PortError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| {
                PortError::permanent(WHAT, format!("cannot build the HTTP client: {e}"))
            })?;
        Ok(SlackWebhook { url, http })
    }
}

#[async_trait]
impl Notifier for SlackWebhook {
    async fn notify(&self, notification: &Notification) -> Result<(), PortError> {
        let url = self.url.get().await?;
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            // The template creates the secret with a random placeholder until the operator sets it.
            return Err(PortError::permanent(
                WHAT,
                "the webhook secret holds no URL yet: set it with aws secretsmanager put-secret-value (see the README)",
            ));
        }
        let response = self
            .http
            .post(url)
            .json(&notification.payload)
            .send()
            .await
            .map_err(|e| {
                // reqwest's message includes the URL: keep only what kind of failure it was.
                let kind = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "could not connect"
                } else {
                    "failed"
                };
                PortError::transient(WHAT, format!("webhook post {kind}"))
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        let message = format!(
            "webhook answered {status}: {}",
            body.chars().take(200).collect::<String>()
        );
        Err(PortError {
            what: WHAT,
            message,
            retryable: status.as_u16() == 429 || status.is_server_error(),
        })
    }
}
