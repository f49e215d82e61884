//! One delivery engine for both local stacks (`energy up` and the in-memory stack of the tests):
//! one attempt at delivering an event under a rule, decided by the target's policy as the
//! template sets it. A function is retried as Lambda's asynchronous invocation retries it (its
//! `EventInvokeConfig`: retries, maximum event age) and, after the last attempt, its failure goes
//! to its on-failure destination if it has one; an HTTP target is retried as the rule's
//! `RetryPolicy` says, and a 4xx other than 408 and 429 is final at once.
//!
//! The stacks differ only in where they keep the queue (SQLite rows or a Vec), how long they wait
//! between attempts (wall-clock backoff or none) and how they stamp the on-failure record.

use std::collections::BTreeMap;

use jiff::SignedDuration;
use serde_json::Value;

use crate::handlers::{Handlers, Invocation, on_failure_record};
use crate::topology::{Target, Topology};

/// What one attempt came to.
#[derive(Debug, Clone)]
pub enum Attempted {
    Delivered(Invocation),
    Failed {
        /// What went wrong, for the log and the dead letter.
        error: String,
        /// The target's policy allows no further attempt: the delivery is a dead letter.
        give_up: bool,
        /// Lambda's on-failure record for the bus, when the function has that destination and
        /// this was its last attempt.
        on_failure: Option<Value>,
    },
}

/// Attempt number `attempt` (1 for the first) to deliver `event` under `rule`, `age` after it was
/// first queued. `http` is the client for HTTP targets (a stack without one refuses them).
pub async fn attempt(
    topology: &Topology,
    handlers: &Handlers,
    http: Option<&reqwest::Client>,
    rule: &str,
    event: &Value,
    attempt: u32,
    age: SignedDuration,
) -> Attempted {
    let Some(delivery) = topology.delivery(rule) else {
        return Attempted::Failed {
            error: format!(
                "rule {rule} no longer exists (the template or the consumers file changed)"
            ),
            give_up: true,
            on_failure: None,
        };
    };
    let out_of_time = attempt > delivery.max_retries || age >= delivery.max_age;
    match &delivery.target {
        Target::Function(f) => match handlers.invoke(*f, event).await {
            Ok(invocation) => Attempted::Delivered(invocation),
            // Lambda retries an asynchronous invocation whatever the error.
            Err(e) => Attempted::Failed {
                error: e.to_string(),
                give_up: out_of_time,
                on_failure: delivery.on_failure_to_bus.filter(|_| out_of_time).map(|f| {
                    on_failure_record(f, event, attempt as usize, &e.error_type, &e.message)
                }),
            },
        },
        Target::Http { url, headers } => {
            let Some(http) = http else {
                return Attempted::Failed {
                    error: format!("{url}: this stack makes no HTTP deliveries"),
                    give_up: true,
                    on_failure: None,
                };
            };
            match post(http, url, headers, event).await {
                Ok(summary) => Attempted::Delivered(Invocation {
                    summary,
                    quiet: false,
                }),
                Err((error, permanent)) => Attempted::Failed {
                    error,
                    give_up: permanent || out_of_time,
                    on_failure: None,
                },
            }
        }
    }
}

/// POSTs the event to an HTTP target. 2xx is success; 4xx other than 408 and 429 is final.
async fn post(
    http: &reqwest::Client,
    url: &str,
    headers: &BTreeMap<String, String>,
    event: &Value,
) -> Result<String, (String, bool)> {
    let mut request = http.post(url).json(event);
    for (k, v) in headers {
        request = request.header(k, v);
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status();
            if status.is_success() {
                Ok(format!("HTTP {}", status.as_u16()))
            } else {
                let permanent = status.is_client_error() && !matches!(status.as_u16(), 408 | 429);
                let body = response.text().await.unwrap_or_default();
                let body: String = body.chars().take(200).collect();
                Err((format!("HTTP {status}: {body}"), permanent))
            }
        }
        Err(e) => Err((format!("{url}: {e}"), false)),
    }
}
