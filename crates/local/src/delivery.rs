//! One delivery engine for both local stacks (`energy up` and the in-memory stack of the tests):
//! one attempt at delivering an event under a rule, decided by the target's policy as the
//! template sets it. A function is retried as Lambda's asynchronous invocation retries it (its
//! `EventInvokeConfig`'s `MaximumRetryAttempts`, 2 when it has none) within the rule's
//! `RetryPolicy.MaximumEventAgeInSeconds`, and after the last attempt its failure goes to its
//! on-failure destination if it has one; an HTTP target is retried as the rule's `RetryPolicy`
//! says after a timeout, a 401, 407, 409, 429 or 5xx, and any other answer but a 2xx is final at
//! once ([`retried`]).
//!
//! The stacks differ only in where they keep the queue (SQLite rows or a Vec), how long they wait
//! between attempts (wall-clock backoff or none) and how they stamp the on-failure record.

use jiff::SignedDuration;
use serde_json::Value;

use crate::handlers::{Handlers, Invocation, on_failure_record};
use crate::topology::{Target, Topology};

/// What one attempt came to.
#[derive(Debug, Clone)]
pub enum Attempted {
    Delivered(Invocation),
    /// The target is the bus: the engine puts the event on it again.
    ToBus,
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

/// Attempt number `attempt` (1 for the first) to deliver `event` to target `target` of `rule`,
/// `age` after it was first queued. `http` is the client for HTTP targets (a stack without one
/// refuses them).
#[allow(clippy::too_many_arguments)]
pub async fn attempt(
    topology: &Topology,
    handlers: &Handlers,
    http: Option<&reqwest::Client>,
    rule: &str,
    target: &str,
    event: &Value,
    attempt: u32,
    age: SignedDuration,
) -> Attempted {
    let Some(delivery) = topology.delivery(rule, target) else {
        return Attempted::Failed {
            error: format!(
                "rule {rule} or its target {target} no longer exists (the template, the consumers file or the EventBridge API changed it)"
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
        Target::Bus => Attempted::ToBus,
        Target::Unavailable { arn, reason } => Attempted::Failed {
            error: format!("{arn}: {reason}"),
            give_up: out_of_time,
            on_failure: None,
        },
        Target::Http { url, .. } => {
            let Some(http) = http else {
                return Attempted::Failed {
                    error: format!("{url}: this stack makes no HTTP deliveries"),
                    give_up: true,
                    on_failure: None,
                };
            };
            match send(http, &delivery.target, event).await {
                Ok(summary) => Attempted::Delivered(Invocation {
                    summary,
                    quiet: false,
                }),
                Err(HttpFailure { error, permanent }) => Attempted::Failed {
                    error,
                    give_up: permanent || out_of_time,
                    on_failure: None,
                },
            }
        }
    }
}

/// How long an HTTP target has to answer (EventBridge gives an API destination five seconds).
pub const HTTP_TARGET_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The answers EventBridge retries an API destination after: 401, 407, 409, 429 and 5xx. Any
/// other (1xx, 3xx, the other 4xx) is final at once.
pub fn retried(status: u16) -> bool {
    matches!(status, 401 | 407 | 409 | 429 | 500..=599)
}

/// Why an HTTP delivery failed, and whether a retry may help.
struct HttpFailure {
    error: String,
    permanent: bool,
}

/// Sends the event to an HTTP target as an API destination does: the method, the connection's
/// headers, query parameters and authorization, the event as the JSON body. 2xx is success;
/// what else is retried, [`retried`] says.
async fn send(
    http: &reqwest::Client,
    target: &Target,
    event: &Value,
) -> Result<String, HttpFailure> {
    let Target::Http {
        url,
        method,
        headers,
        query,
        basic,
    } = target
    else {
        return Err(HttpFailure {
            error: format!("{} is not an HTTP target", target.describe()),
            permanent: true,
        });
    };
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::POST);
    let mut address = reqwest::Url::parse(url).map_err(|e| HttpFailure {
        error: format!("{url}: {e}"),
        permanent: true,
    })?;
    if !query.is_empty() {
        address.query_pairs_mut().extend_pairs(query);
    }
    // An API destination's endpoint has five seconds to answer, as EventBridge gives it.
    let mut request = http
        .request(method, address)
        .timeout(HTTP_TARGET_TIMEOUT)
        .json(event);
    if let Some((user, password)) = basic {
        request = request.basic_auth(user, Some(password));
    }
    for (k, v) in headers {
        request = request.header(k, v);
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status();
            if status.is_success() {
                Ok(format!("HTTP {}", status.as_u16()))
            } else {
                let permanent = !retried(status.as_u16());
                let body = match response.text().await {
                    Ok(body) => {
                        let words: Vec<&str> = body.split_whitespace().collect();
                        words.join(" ").chars().take(200).collect()
                    }
                    Err(e) => format!("(the body did not arrive: {e})"),
                };
                Err(HttpFailure {
                    error: format!("HTTP {status}: {body}"),
                    permanent,
                })
            }
        }
        Err(e) => Err(HttpFailure {
            error: format!("{url}: {e}"),
            permanent: false,
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use energy_auction::sim::{SimConfig, SimPlatform};
    use energy_core::calendar::MarketRules;
    use energy_core::events::{DomainEvent, OrderReady, OrderRef};
    use energy_core::memory::fixtures::{self, event};
    use energy_core::memory::{
        InMemoryBus, InMemoryNotifier, InMemoryOrderStore, InMemoryResults, InMemoryScheduler,
        ManualClock,
    };
    use energy_core::ports::OrderStore;
    use energy_core::retry::RetryPolicy;
    use jiff::Timestamp;

    use super::*;
    use crate::handlers::Adapters;

    const NOW: &str = "2026-01-14T11:46:00Z";

    /// A stack whose results bucket is down, routed by `template`.
    async fn stack(template: &str) -> (Topology, Handlers, Value) {
        let topology = Topology::from_template(template, "test").unwrap();
        let clock = Arc::new(ManualClock::new(NOW.parse().unwrap()));
        let store = Arc::new(InMemoryOrderStore::new());
        let results = Arc::new(InMemoryResults::new());
        results.fail_next(100);
        let adapters = Adapters {
            clock: clock.clone(),
            orders: store.clone(),
            due: store.clone(),
            bus: Arc::new(InMemoryBus::new(clock.clone())),
            scheduler: Arc::new(InMemoryScheduler::new()),
            results,
            notifier: Arc::new(InMemoryNotifier::new()),
            platform: Arc::new(SimPlatform::new(SimConfig::default(), clock)),
        };
        let at: Timestamp = NOW.parse().unwrap();
        let record = fixtures::ready("d-1", true, at);
        store.insert(&record).await.unwrap();
        let result = record.result.clone().unwrap();
        let ready = DomainEvent::Ready(OrderReady {
            order: OrderRef::from(&record.order),
            outcome: result.outcome,
            result,
        });
        let envelope = serde_json::to_value(event(&ready, at)).unwrap();
        let handlers = Handlers::new(&adapters, MarketRules::default(), RetryPolicy::default());
        (topology, handlers, envelope)
    }

    async fn attempts_until_given_up(template: &str) -> (u32, Option<Value>) {
        let (topology, handlers, envelope) = stack(template).await;
        let rule = topology.routes(&envelope).first().cloned().unwrap();
        for n in 1..10 {
            let attempted = attempt(
                &topology,
                &handlers,
                None,
                &rule.rule,
                &rule.target_id,
                &envelope,
                n,
                SignedDuration::ZERO,
            )
            .await;
            match attempted {
                Attempted::Failed {
                    give_up: true,
                    on_failure,
                    ..
                } => return (n, on_failure),
                Attempted::Failed { .. } => {}
                other => panic!("not a failure: {other:?}"),
            }
        }
        panic!("never gave up");
    }

    #[test]
    fn api_destination_answers_are_retried_as_eventbridge_retries_them() {
        for retry in [401, 407, 409, 429, 500, 502, 503, 599] {
            assert!(retried(retry), "{retry}");
        }
        for last in [100, 301, 304, 400, 403, 404, 408, 410, 413, 422] {
            assert!(!retried(last), "{last}");
        }
    }

    #[tokio::test]
    async fn a_function_is_tried_as_often_as_its_event_invoke_config_says() {
        let (tries, record) = attempts_until_given_up(crate::topology::EMBEDDED_TEMPLATE).await;
        assert_eq!(tries, 3, "the template's MaximumRetryAttempts: 2");
        let record = record.expect("store-result's on-failure destination is the bus");
        assert_eq!(
            record["detail"]["requestContext"]["approximateInvokeCount"],
            3
        );
        // The template's number, not a constant: 0 retries gives up after the first try.
        let none = crate::topology::EMBEDDED_TEMPLATE.replace(
            "EventInvokeConfig:\n        MaximumRetryAttempts: 2",
            "EventInvokeConfig:\n        MaximumRetryAttempts: 0",
        );
        assert_ne!(none, crate::topology::EMBEDDED_TEMPLATE);
        assert_eq!(attempts_until_given_up(&none).await.0, 1);
        // Without a destination, nothing goes to the bus.
        let no_destination = crate::topology::EMBEDDED_TEMPLATE.replace(
            "        DestinationConfig:\n          OnFailure:\n            Type: EventBridge\n            Destination: !GetAtt EventBus.Arn\n",
            "",
        );
        assert_ne!(no_destination, crate::topology::EMBEDDED_TEMPLATE);
        assert_eq!(attempts_until_given_up(&no_destination).await, (3, None));
    }
}
