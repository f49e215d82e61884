//! `HttpPlatform`: the core's `AuctionPlatform` port over the platform contract.
//!
//! Every request has its own timeout. Connection errors, timeouts, 429 and 5xx are retried with
//! exponential backoff up to `max_attempts`, then reported as a retryable error (the evaluator's
//! Lambda retry and the sweeper take it from there). Any other status is an error that says what
//! the platform answered, except the ones the contract gives a meaning: 409 `GateClosed` on a
//! submission is a refusal, 404 on results is an unknown order.

use std::time::Duration;

use async_trait::async_trait;
use energy_core::order::Order;
use energy_core::ports::{AuctionPlatform, PortError, ResultsStatus, Submission, Withdrawal};
use reqwest::{Method, StatusCode};

use super::wire::{ApiError, CurveOrder, OrderAccepted, OrderResults, ResultsState, auction_id};

const WHAT: &str = "auction platform";

/// Where the platform is and how patiently to talk to it.
#[derive(Debug, Clone)]
pub struct HttpPlatformConfig {
    /// e.g. `https://platform.example/` (paths are appended to it).
    pub base_url: String,
    /// Sent as `X-Api-Key` when set.
    pub api_key: Option<String>,
    /// Per request.
    pub timeout: Duration,
    /// Tries per call, the first included.
    pub max_attempts: u32,
    /// First backoff step; doubles each retry.
    pub backoff: Duration,
}

impl HttpPlatformConfig {
    pub fn new(base_url: impl Into<String>) -> Self {
        HttpPlatformConfig {
            base_url: base_url.into(),
            api_key: None,
            timeout: Duration::from_secs(5),
            max_attempts: 4,
            backoff: Duration::from_millis(200),
        }
    }
}

/// The client.
#[derive(Debug, Clone)]
pub struct HttpPlatform {
    config: HttpPlatformConfig,
    client: reqwest::Client,
}

/// One try's failure, and whether another try may help.
enum Attempt {
    Retry(String),
    Answer(StatusCode, Vec<u8>),
}

impl HttpPlatform {
    pub fn new(config: HttpPlatformConfig) -> Result<Self, PortError> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .build()
            .map_err(|e| {
                PortError::permanent(WHAT, format!("cannot build the HTTP client: {e}"))
            })?;
        Ok(HttpPlatform { config, client })
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/{}",
            self.config.base_url.trim_end_matches('/'),
            path.trim_start_matches('/')
        )
    }

    async fn once(&self, method: &Method, url: &str, body: Option<&[u8]>) -> Attempt {
        let mut request = self
            .client
            .request(method.clone(), url)
            .header("accept", "application/json");
        if let Some(key) = &self.config.api_key {
            request = request.header("x-api-key", key);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_vec());
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => {
                return Attempt::Retry(format!("no answer within {:?}", self.config.timeout));
            }
            Err(e) => return Attempt::Retry(format!("cannot reach it: {e}")),
        };
        let status = response.status();
        let bytes = match response.bytes().await {
            Ok(b) => b.to_vec(),
            Err(e) if e.is_timeout() => {
                return Attempt::Retry(format!(
                    "no complete answer within {:?}",
                    self.config.timeout
                ));
            }
            Err(e) => return Attempt::Retry(format!("answer cut short: {e}")),
        };
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Attempt::Retry(format!("answered {status}: {}", describe(&bytes)));
        }
        Attempt::Answer(status, bytes)
    }

    /// Sends with retries; answers the first status that is not worth retrying.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Vec<u8>), PortError> {
        let url = self.url(path);
        let mut delay = self.config.backoff;
        let attempts = self.config.max_attempts.max(1);
        let mut last = String::new();
        for attempt in 1..=attempts {
            match self.once(&method, &url, body.as_deref()).await {
                Attempt::Answer(status, bytes) => return Ok((status, bytes)),
                Attempt::Retry(why) => {
                    tracing::warn!(%url, attempt, %why, "auction platform call failed");
                    last = why;
                }
            }
            if attempt < attempts {
                tokio::time::sleep(delay).await;
                delay = delay.saturating_mul(2);
            }
        }
        Err(PortError::transient(
            WHAT,
            format!("{method} {url}: {last} (after {attempts} attempts)"),
        ))
    }
}

/// The platform's error message, or the start of whatever it sent.
fn describe(body: &[u8]) -> String {
    match serde_json::from_slice::<ApiError>(body) {
        Ok(e) => format!("{}: {}", e.error, e.message),
        Err(_) => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
    }
}

fn unexpected(method: &str, path: &str, status: StatusCode, body: &[u8]) -> PortError {
    PortError::permanent(
        WHAT,
        format!("{method} {path} answered {status}: {}", describe(body)),
    )
}

fn decode<T: serde::de::DeserializeOwned>(path: &str, body: &[u8]) -> Result<T, PortError> {
    serde_json::from_slice(body).map_err(|e| {
        PortError::permanent(WHAT, format!("{path}: an answer outside the contract: {e}"))
    })
}

#[async_trait]
impl AuctionPlatform for HttpPlatform {
    async fn submit(&self, order: &Order) -> Result<Submission, PortError> {
        let path = format!(
            "v1/auctions/{}/orders/{}",
            auction_id(order.auction()),
            order.record_id
        );
        let body = serde_json::to_vec(&CurveOrder::from_order(order))
            .map_err(|e| PortError::permanent(WHAT, e.to_string()))?;
        let (status, bytes) = self.send(Method::PUT, &path, Some(body)).await?;
        match status {
            s if s.is_success() => {
                let accepted: OrderAccepted = decode(&path, &bytes)?;
                Ok(Submission::Accepted {
                    expected_publication: accepted.expected_publication,
                })
            }
            StatusCode::CONFLICT | StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => {
                Ok(Submission::Refused {
                    reason: describe(&bytes),
                })
            }
            s => Err(unexpected("PUT", &path, s, &bytes)),
        }
    }

    async fn results(&self, order: &Order) -> Result<ResultsStatus, PortError> {
        let path = format!(
            "v1/auctions/{}/orders/{}/results",
            auction_id(order.auction()),
            order.record_id
        );
        let (status, bytes) = self.send(Method::GET, &path, None).await?;
        match status {
            StatusCode::OK => {
                let answer: OrderResults = decode(&path, &bytes)?;
                match (answer.status, answer.result) {
                    (ResultsState::Published, Some(result)) => {
                        Ok(ResultsStatus::Published(Box::new(result)))
                    }
                    (ResultsState::Preliminary, Some(result)) => Ok(ResultsStatus::Preliminary {
                        result: Box::new(result),
                        expected_final: answer.expected_publication,
                    }),
                    (state @ (ResultsState::Published | ResultsState::Preliminary), None) => Err(
                        PortError::permanent(WHAT, format!("{path}: {state:?} without a result")),
                    ),
                    (ResultsState::NotPublished, _) => Ok(ResultsStatus::NotYet {
                        expected_publication: answer.expected_publication,
                    }),
                }
            }
            StatusCode::NOT_FOUND => Ok(ResultsStatus::Unknown {
                reason: describe(&bytes),
            }),
            s => Err(unexpected("GET", &path, s, &bytes)),
        }
    }

    async fn withdraw(&self, order: &Order) -> Result<Withdrawal, PortError> {
        let path = format!(
            "v1/auctions/{}/orders/{}",
            auction_id(order.auction()),
            order.record_id
        );
        let (status, bytes) = self.send(Method::DELETE, &path, None).await?;
        match status {
            s if s.is_success() => Ok(Withdrawal::Withdrawn),
            StatusCode::NOT_FOUND => Ok(Withdrawal::NotHeld),
            StatusCode::CONFLICT => Ok(Withdrawal::Refused {
                reason: describe(&bytes),
            }),
            s => Err(unexpected("DELETE", &path, s, &bytes)),
        }
    }
}
