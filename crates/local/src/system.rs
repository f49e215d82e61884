//! The whole system in one process: the five handlers over the in-memory ports, an in-process
//! bus that routes like the template's rules, the scheduler, the sweep rule, and Lambda's
//! asynchronous-invocation behaviour (two retries, then the on-failure destination on the bus).
//!
//! Time is a [`ManualClock`]: [`System::advance`] jumps to the next instant something is due (a
//! schedule firing or a sweep tick), so hours of auction time pass in milliseconds.

use std::sync::Arc;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::eventbridge::EventBridgeEvent;
use energy_auction::sim::{SimConfig, SimPlatform};
use energy_core::calendar::MarketRules;
use energy_core::events::DomainEvent;
use energy_core::memory::{
    InMemoryBus, InMemoryNotifier, InMemoryOrderStore, InMemoryResults, InMemoryScheduler,
    ManualClock,
};
use energy_core::ports::{Ports, Retryable};
use energy_core::retry::RetryPolicy;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use crate::routes::{Function, targets};

/// Lambda's default for asynchronous invocations: the first try and two retries.
pub const ASYNC_ATTEMPTS: usize = 3;

/// One delivery of an event to a function, as the demo prints it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub at: Timestamp,
    pub detail_type: String,
    pub record_id: String,
    pub function: Function,
    pub outcome: String,
}

/// The in-memory adapters, kept typed so tests can look inside.
pub struct System {
    pub clock: Arc<ManualClock>,
    pub store: Arc<InMemoryOrderStore>,
    pub bus: Arc<InMemoryBus>,
    pub scheduler: Arc<InMemoryScheduler>,
    pub results: Arc<InMemoryResults>,
    pub notifier: Arc<InMemoryNotifier>,
    pub platform: Arc<SimPlatform>,
    pub ports: Ports,
    pub submit: submit_order::Config,
    pub evaluate: evaluate_order::Config,
    pub store_result: store_result::Config,
    pub notify: notify_slack::Config,
    pub sweep: sweep_pending::Config,
    /// The sweep rule's rate.
    pub sweep_every: SignedDuration,
    next_sweep: std::sync::Mutex<Timestamp>,
}

impl System {
    pub fn new(start: Timestamp, rules: MarketRules, retry: RetryPolicy) -> System {
        let clock = Arc::new(ManualClock::new(start));
        let store = Arc::new(InMemoryOrderStore::new());
        let bus = Arc::new(InMemoryBus::new(clock.clone()));
        let scheduler = Arc::new(InMemoryScheduler::new());
        let results = Arc::new(InMemoryResults::new());
        let notifier = Arc::new(InMemoryNotifier::new());
        let platform = Arc::new(SimPlatform::new(
            SimConfig {
                rules: rules.clone(),
                ..SimConfig::default()
            },
            clock.clone(),
        ));
        let ports = Ports {
            clock: clock.clone(),
            store: store.clone(),
            bus: bus.clone(),
            scheduler: scheduler.clone(),
            results: results.clone(),
            notifier: notifier.clone(),
            platform: platform.clone(),
        };
        let sweep_every = SignedDuration::from_mins(2);
        System {
            clock,
            store,
            bus,
            scheduler,
            results,
            notifier,
            platform,
            ports,
            submit: submit_order::Config {
                rules: rules.clone(),
                ..Default::default()
            },
            evaluate: evaluate_order::Config {
                retry,
                rules: rules.clone(),
            },
            store_result: store_result::Config { retry },
            notify: notify_slack::Config { retry },
            sweep: sweep_pending::Config::default(),
            sweep_every,
            next_sweep: std::sync::Mutex::new(start.saturating_add(sweep_every).unwrap_or(start)),
        }
    }

    pub fn now(&self) -> Timestamp {
        use energy_core::ports::Clock;
        self.clock.now()
    }

    /// Calls submit-order with an API Gateway HTTP API (payload 2.0) request.
    pub async fn http(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> ApiGatewayV2httpResponse {
        submit_order::handle(api_request(method, path, body), &self.ports, &self.submit).await
    }

    /// Delivers every queued event to its targets until the bus is quiet.
    pub async fn run_until_quiet(&self, mut observe: impl FnMut(&Delivery)) {
        while let Some(envelope) = self.bus.pop() {
            for delivery in self.deliver(&envelope).await {
                observe(&delivery);
            }
        }
    }

    /// Delivers one event to every function whose rule matches it, retrying a failed
    /// invocation like Lambda's asynchronous invocation and then sending the failure to the bus.
    pub async fn deliver(&self, envelope: &Value) -> Vec<Delivery> {
        let detail_type = envelope["detail-type"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let record_id = envelope["detail"]["record_id"]
            .as_str()
            .unwrap_or("-")
            .to_string();
        let mut out = Vec::new();
        for function in targets(envelope) {
            let mut outcome = String::new();
            for attempt in 1..=ASYNC_ATTEMPTS {
                match self.invoke(function, envelope).await {
                    Ok(o) => {
                        outcome = o;
                        break;
                    }
                    Err((error_type, message)) if attempt == ASYNC_ATTEMPTS => {
                        outcome = format!(
                            "failed {attempt} times: {message}; on-failure destination → bus"
                        );
                        self.bus.inject_raw(on_failure_record(
                            function,
                            envelope,
                            attempt,
                            &error_type,
                            &message,
                        ));
                    }
                    Err(_) => {}
                }
            }
            out.push(Delivery {
                at: self.now(),
                detail_type: detail_type.clone(),
                record_id: record_id.clone(),
                function,
                outcome,
            });
        }
        out
    }

    async fn invoke(
        &self,
        function: Function,
        envelope: &Value,
    ) -> Result<String, (String, String)> {
        let event: EventBridgeEvent<Value> = serde_json::from_value(envelope.clone())
            .map_err(|e| ("InvalidEvent".to_string(), e.to_string()))?;
        fn err<E: std::fmt::Display + Retryable>(e: E) -> (String, String) {
            let kind = if e.retryable() {
                "Retryable"
            } else {
                "NotRetryable"
            };
            (kind.to_string(), e.to_string())
        }
        match function {
            Function::EvaluateOrder => evaluate_order::handle(event, &self.ports, &self.evaluate)
                .await
                .map(|o| format!("{o:?}"))
                .map_err(err),
            Function::StoreResult => store_result::handle(event, &self.ports, &self.store_result)
                .await
                .map(|o| format!("{o:?}"))
                .map_err(err),
            Function::NotifySlack => notify_slack::handle(event, &self.ports, &self.notify)
                .await
                .map(|o| format!("{o:?}"))
                .map_err(err),
            Function::SweepPending => sweep_pending::handle(event, &self.ports, &self.sweep)
                .await
                .map(|o| format!("{o:?}"))
                .map_err(err),
        }
    }

    /// Moves the clock to the next instant something is due and fires it: schedules due then
    /// put their event on the bus; a sweep tick runs the sweeper. Returns false when nothing is
    /// scheduled and no order is waiting.
    pub async fn advance(&self) -> bool {
        let next_schedule = self.scheduler.next_at();
        let waiting = self.store.all().iter().any(|r| !r.state.is_final());
        if next_schedule.is_none() && !waiting {
            return false;
        }
        let sweep_at = *self.next_sweep.lock().unwrap_or_else(|e| e.into_inner());
        let at = next_schedule.map_or(sweep_at, |s| s.min(sweep_at));
        if at > self.now() {
            self.clock.set(at);
        }
        for due in self.scheduler.take_due(self.now()) {
            self.bus.inject(&DomainEvent::EvaluationDue(due.event));
        }
        if self.now() >= sweep_at {
            *self.next_sweep.lock().unwrap_or_else(|e| e.into_inner()) = sweep_at
                .saturating_add(self.sweep_every)
                .unwrap_or(sweep_at);
            self.bus.inject_raw(scheduled_event(self.now()));
        }
        true
    }
}

/// An API Gateway HTTP API request (payload format 2.0), as API Gateway would send it.
pub fn api_request(method: &str, path: &str, body: Option<&str>) -> ApiGatewayV2httpRequest {
    let route_key = match (method, path.trim_end_matches('/')) {
        ("POST", "/orders") => "POST /orders".to_string(),
        ("GET", p) if p.starts_with("/orders/") => "GET /orders/{record_id}".to_string(),
        _ => "$default".to_string(),
    };
    let mut request = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": "localhost",
            "requestId": "local",
            "routeKey": route_key,
            "stage": "$default",
            "time": "",
            "timeEpoch": 0,
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "energy"}
        },
        "isBase64Encoded": false
    });
    if let Some(id) = path.strip_prefix("/orders/") {
        request["pathParameters"] = json!({"record_id": id});
    }
    if let Some(body) = body {
        request["body"] = json!(body);
    }
    serde_json::from_value(request).unwrap_or_default()
}

/// The event an EventBridge schedule rule delivers.
fn scheduled_event(now: Timestamp) -> Value {
    json!({
        "version": "0",
        "id": format!("sweep-{}", now.as_second()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "region": "local",
        "resources": ["arn:aws:events:local:000000000000:rule/energy-sweep"],
        "detail": {}
    })
}

/// What Lambda's on-failure destination puts on the bus after the last retry.
fn on_failure_record(
    function: Function,
    envelope: &Value,
    attempts: usize,
    error_type: &str,
    message: &str,
) -> Value {
    json!({
        "version": "0",
        "id": format!("failure-{}", envelope["id"].as_str().unwrap_or("")),
        "detail-type": notify_slack::LAMBDA_FAILURE,
        "source": "lambda",
        "account": "000000000000",
        "time": envelope["time"],
        "region": "local",
        "resources": [],
        "detail": {
            "version": "1.0",
            "requestContext": {
                "requestId": envelope["id"],
                "functionArn": format!("arn:aws:lambda:local:000000000000:function:{}:$LATEST", function.name()),
                "condition": "RetriesExhausted",
                "approximateInvokeCount": attempts
            },
            "requestPayload": envelope,
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "responsePayload": {"errorType": error_type, "errorMessage": message}
        }
    })
}
