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

/// Where a secret's string value is read from: Secrets Manager, or a fake in tests.
#[async_trait]
pub trait SecretSource: Send + Sync + std::fmt::Debug {
    /// The value, trimmed; an error if there is none.
    async fn read(&self) -> Result<String, PortError>;
}

/// A secret in Secrets Manager, by ARN or name.
#[derive(Debug)]
struct SecretsManagerSecret {
    client: Client,
    secret_id: String,
}

#[async_trait]
impl SecretSource for SecretsManagerSecret {
    async fn read(&self) -> Result<String, PortError> {
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
    }
}

/// Reads a secret's string value once and caches it.
#[derive(Debug)]
pub struct CachedSecret {
    source: Box<dyn SecretSource>,
    value: OnceCell<String>,
}

impl CachedSecret {
    pub fn new(client: Client, secret_id: impl Into<String>) -> Self {
        Self::from_source(SecretsManagerSecret {
            client,
            secret_id: secret_id.into(),
        })
    }

    /// The secret read from `source`.
    pub fn from_source(source: impl SecretSource + 'static) -> Self {
        CachedSecret {
            source: Box::new(source),
            value: OnceCell::new(),
        }
    }

    pub async fn get(&self) -> Result<&str, PortError> {
        self.value
            .get_or_try_init(|| self.source.read())
            .await
            .map(String::as_str)
    }
}

/// The webhook URL must be https (the message names orders and portfolios, and the URL is the
/// credential); plain http only to this machine, for tests. The secret holds a random placeholder
/// until the operator sets it.
fn check_url(url: &str) -> Result<(), PortError> {
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| {
            url.strip_prefix(p)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
        });
    if url.starts_with("https://") || loopback {
        return Ok(());
    }
    let message = if url.starts_with("http://") {
        "the webhook URL is plain http: Slack's incoming webhooks are https://hooks.slack.com/...; set the secret to that"
    } else {
        "the webhook secret holds no URL yet: set it with aws secretsmanager put-secret-value (see the README)"
    };
    Err(PortError::permanent(WHAT, message))
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
        check_url(url)?;
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

#[cfg(test)]
mod url_tests {
    use super::check_url;

    #[test]
    fn only_https_or_this_machine_is_posted_to() {
        for ok in [
            "https://hooks.slack.com/services/T/B/X",
            "http://127.0.0.1:8080/services/T/B/X",
            "http://localhost/x",
            "http://[::1]:9/x",
        ] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://hooks.slack.com/services/T/B/X",
            "http://127.0.0.1.evil.example/x",
            "http://localhost.evil.example/x",
            "Zk3q9Xn2",
            "",
        ] {
            let e = check_url(bad).expect_err(bad);
            assert!(!e.retryable, "{bad}");
        }
        assert!(
            check_url("http://hooks.slack.com/x")
                .unwrap_err()
                .message
                .contains("plain http")
        );
    }
}
