//! `Notifier` over a Slack incoming webhook whose URL lives in Secrets Manager.
//!
//! The URL is read on the first message and kept for five minutes ([`CachedSecret::TTL`]), and
//! read again on the next message if it is not a webhook URL (the placeholder the template
//! creates) or Slack answers that the webhook is gone; it never appears in a log line or an
//! error. A post has a timeout; a non-2xx answer is an error carrying the status
//! (retryable for 429 and 5xx).

use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;

/// The Secrets Manager client, for callers that read a secret of their own.
pub type SecretsClient = Client;
use energy_core::ports::{Notification, Notifier, PortError};
use tokio::sync::Mutex;

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

/// A secret's string value, read when first needed and kept for [`CachedSecret::TTL`]: so a
/// changed value (the webhook the operator sets after the first deploy, a rotated one) is
/// picked up by a warm container, with one read per TTL at most while the value is good.
#[derive(Debug)]
pub struct CachedSecret {
    source: Box<dyn SecretSource>,
    ttl: Duration,
    /// The value and when it was read.
    value: Mutex<Option<(String, Instant)>>,
}

impl CachedSecret {
    /// How long a value is used before it is read again.
    pub const TTL: Duration = Duration::from_secs(5 * 60);

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
            ttl: Self::TTL,
            value: Mutex::new(None),
        }
    }

    /// Keeps a value for `ttl` instead of [`CachedSecret::TTL`].
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The value: the kept one while it is younger than the TTL, else read again. Callers
    /// wait for one read together. If the read fails, a value kept before is used (Secrets
    /// Manager down for a moment stops nothing) and the next call reads again.
    pub async fn get(&self) -> Result<String, PortError> {
        let mut kept = self.value.lock().await;
        if let Some((value, read_at)) = kept.as_ref()
            && read_at.elapsed() < self.ttl
        {
            return Ok(value.clone());
        }
        match self.source.read().await {
            Ok(value) => {
                *kept = Some((value.clone(), Instant::now()));
                Ok(value)
            }
            Err(e) => kept.as_ref().map(|(value, _)| value.clone()).ok_or(e),
        }
    }

    /// Drops the kept value (it did not work): the next [`CachedSecret::get`] reads it again.
    pub async fn forget(&self) {
        *self.value.lock().await = None;
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
        if let Err(e) = check_url(&url) {
            // The placeholder the operator has not replaced yet, or a wrong value: read the
            // secret again for the next message rather than keep it.
            self.url.forget().await;
            return Err(e);
        }
        let response = self
            .http
            .post(&url)
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
        if [403, 404, 410].contains(&status.as_u16()) {
            // Slack's answer to a revoked webhook: the secret may hold its replacement by now.
            self.url.forget().await;
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

#[cfg(test)]
mod cache_tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use async_trait::async_trait;
    use energy_core::ports::{Notification, Notifier, PortError};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::{CachedSecret, SecretSource, SlackWebhook};

    /// A secret the test sets, counting its reads.
    #[derive(Debug, Clone, Default)]
    struct Fake {
        value: Arc<Mutex<String>>,
        reads: Arc<AtomicUsize>,
        /// Secrets Manager unreachable.
        down: Arc<AtomicBool>,
    }

    impl Fake {
        fn holding(value: &str) -> Self {
            let fake = Fake::default();
            fake.set(value);
            fake
        }
        fn set(&self, value: &str) {
            *self.value.lock().unwrap() = value.to_string();
        }
        fn reads(&self) -> usize {
            self.reads.load(Ordering::SeqCst)
        }
    }

    #[async_trait]
    impl SecretSource for Fake {
        async fn read(&self) -> Result<String, PortError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            if self.down.load(Ordering::SeqCst) {
                return Err(PortError::transient("secrets", "unreachable"));
            }
            Ok(self.value.lock().unwrap().clone())
        }
    }

    /// A webhook on this machine that answers 200 to every post: its URL and its post count.
    async fn webhook() -> (String, Arc<AtomicUsize>) {
        webhook_answering(200).await
    }

    /// The same, answering `status`.
    async fn webhook_answering(status: u16) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/services/T/B/X", listener.local_addr().unwrap());
        let posts = Arc::new(AtomicUsize::new(0));
        let counted = posts.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let counted = counted.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    // The headers, then as many body bytes as they announce.
                    loop {
                        let Ok(n) = socket.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        request.extend_from_slice(&buf[..n]);
                        let text = String::from_utf8_lossy(&request).to_lowercase();
                        if let Some(end) = text.find("\r\n\r\n") {
                            let length = text
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            if request.len() >= end + 4 + length {
                                break;
                            }
                        }
                    }
                    counted.fetch_add(1, Ordering::SeqCst);
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                    );
                    let _ = socket.write_all(reply.as_bytes()).await;
                });
            }
        });
        (url, posts)
    }

    fn notification() -> Notification {
        Notification {
            key: "o-1/Rejected".into(),
            text: "rejected".into(),
            payload: serde_json::json!({"text": "rejected"}),
        }
    }

    fn slack(secret: CachedSecret) -> SlackWebhook {
        SlackWebhook::new(secret, Duration::from_secs(5)).unwrap()
    }

    #[tokio::test]
    async fn the_webhook_set_after_the_placeholder_was_read_is_posted_to_by_the_same_container() {
        let (url, posts) = webhook().await;
        // The secret as the template creates it: a random placeholder.
        let secret = Fake::holding("Zk3q9Xn2Zk3q9Xn2Zk3q9Xn2Zk3q9Xn2");
        let slack = slack(CachedSecret::from_source(secret.clone()));
        let e = slack.notify(&notification()).await.unwrap_err();
        assert!(e.message.contains("holds no URL"), "{e}");
        // The operator sets the URL (README, "Set the Slack webhook"); the container stays warm.
        secret.set(&url);
        slack.notify(&notification()).await.unwrap();
        assert_eq!(posts.load(Ordering::SeqCst), 1);
        assert_eq!(secret.reads(), 2);
    }

    #[tokio::test]
    async fn a_good_webhook_is_read_once_for_many_messages() {
        let (url, posts) = webhook().await;
        let secret = Fake::holding(&url);
        let slack = slack(CachedSecret::from_source(secret.clone()));
        for _ in 0..20 {
            slack.notify(&notification()).await.unwrap();
        }
        assert_eq!(posts.load(Ordering::SeqCst), 20);
        assert_eq!(secret.reads(), 1, "one Secrets Manager read within the TTL");
    }
    #[tokio::test]
    async fn a_changed_webhook_is_read_once_the_ttl_is_over() {
        let (old, to_old) = webhook().await;
        let (new, to_new) = webhook().await;
        let secret = Fake::holding(&old);
        let ttl = Duration::from_millis(200);
        let slack = slack(CachedSecret::from_source(secret.clone()).with_ttl(ttl));
        slack.notify(&notification()).await.unwrap();
        secret.set(&new);
        slack.notify(&notification()).await.unwrap();
        assert_eq!(
            (to_old.load(Ordering::SeqCst), to_new.load(Ordering::SeqCst)),
            (2, 0),
            "within the TTL"
        );
        tokio::time::sleep(ttl + Duration::from_millis(50)).await;
        slack.notify(&notification()).await.unwrap();
        assert_eq!(
            (to_old.load(Ordering::SeqCst), to_new.load(Ordering::SeqCst)),
            (2, 1)
        );
        assert_eq!(secret.reads(), 2);
    }

    #[tokio::test]
    async fn a_webhook_slack_says_is_gone_is_read_again_on_the_next_message() {
        let (revoked, _) = webhook_answering(404).await;
        let (replacement, posts) = webhook().await;
        let secret = Fake::holding(&revoked);
        let slack = slack(CachedSecret::from_source(secret.clone()));
        let e = slack.notify(&notification()).await.unwrap_err();
        assert!(e.message.contains("404"), "{e}");
        secret.set(&replacement);
        slack.notify(&notification()).await.unwrap();
        assert_eq!(posts.load(Ordering::SeqCst), 1);
        assert_eq!(secret.reads(), 2);
    }

    #[tokio::test]
    async fn a_failed_read_uses_the_value_kept_before_and_a_first_one_fails() {
        let url = "https://hooks.slack.com/services/T/B/X";
        let secret = Fake::holding(url);
        let cached = CachedSecret::from_source(secret.clone()).with_ttl(Duration::ZERO);
        assert_eq!(cached.get().await.unwrap(), url);
        secret.down.store(true, Ordering::SeqCst);
        assert_eq!(cached.get().await.unwrap(), url);
        assert_eq!(secret.reads(), 2, "read again, as the TTL is over");
        let fresh = CachedSecret::from_source(secret.clone());
        assert!(fresh.get().await.unwrap_err().retryable);
    }
}
