//! The five handler crates behind one value, invoked the way Lambda invokes them: the HTTP API's
//! request event for submit-order, the EventBridge event for the others. Both local stacks (the
//! in-memory one of the tests and `energy up`) call the handlers through this.
//!
//! Each handler is built from the stack's [`Adapters`] with exactly the capabilities its struct
//! holds, as its Lambda's `main.rs` builds it from AWS clients.

use std::sync::Arc;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use energy_core::calendar::MarketRules;
use energy_core::handler::{Event, EventHandler, HandlerError};
use energy_core::ports::{
    AuctionPlatform, Clock, EventPublisher, Notifier, OrderStore, ResultStore, RetryScheduler,
    Retryable, SweepClaims,
};
use energy_core::retry::RetryPolicy;
use evaluate_order::EvaluateOrder;
use jiff::Timestamp;
use notify_slack::NotifySlack;
use serde_json::{Value, json};
use store_result::StoreResult;
use submit_order::SubmitOrder;
use sweep_pending::SweepPending;

use crate::function::Function;

/// Every adapter of one local stack: what the whole account is in AWS. Handlers take from it
/// only what they use.
#[derive(Clone)]
pub struct Adapters {
    pub clock: Arc<dyn Clock>,
    pub orders: Arc<dyn OrderStore>,
    /// The orders' due index (the same table as `orders`).
    pub due: Arc<dyn SweepClaims>,
    pub bus: Arc<dyn EventPublisher>,
    pub scheduler: Arc<dyn RetryScheduler>,
    pub results: Arc<dyn ResultStore>,
    pub notifier: Arc<dyn Notifier>,
    pub platform: Arc<dyn AuctionPlatform>,
}

/// Why an invocation failed, as Lambda reports it: `errorType` (`Retryable.Port`) and
/// `errorMessage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvokeError {
    pub error_type: String,
    pub message: String,
    pub retryable: bool,
}

impl InvokeError {
    fn of(e: &HandlerError) -> Self {
        InvokeError {
            error_type: e.error_type(),
            message: e.to_string(),
            retryable: e.retryable(),
        }
    }
}

impl std::fmt::Display for InvokeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error_type, self.message)
    }
}

/// What a successful invocation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The handler's outcome in words.
    pub summary: String,
    /// Nothing worth a console line (a sweep that found nothing overdue).
    pub quiet: bool,
}

/// The handlers, each with its capabilities and settings.
pub struct Handlers {
    pub submit: SubmitOrder,
    pub evaluate: EvaluateOrder,
    pub store_result: StoreResult,
    pub notify: NotifySlack,
    pub sweep: SweepPending,
}

impl Handlers {
    pub fn new(a: &Adapters, rules: MarketRules, retry: RetryPolicy) -> Handlers {
        Handlers {
            submit: SubmitOrder {
                clock: a.clock.clone(),
                orders: a.orders.clone(),
                bus: a.bus.clone(),
                config: submit_order::Config {
                    rules: rules.clone(),
                    ..Default::default()
                },
            },
            evaluate: EvaluateOrder {
                clock: a.clock.clone(),
                orders: a.orders.clone(),
                bus: a.bus.clone(),
                due: a.due.clone(),
                scheduler: a.scheduler.clone(),
                platform: a.platform.clone(),
                config: evaluate_order::Config {
                    retry,
                    rules,
                    ..Default::default()
                },
            },
            store_result: StoreResult {
                clock: a.clock.clone(),
                orders: a.orders.clone(),
                bus: a.bus.clone(),
                results: a.results.clone(),
                config: store_result::Config { retry },
            },
            notify: NotifySlack {
                clock: a.clock.clone(),
                orders: a.orders.clone(),
                notifier: a.notifier.clone(),
                config: notify_slack::Config { retry },
            },
            sweep: SweepPending {
                clock: a.clock.clone(),
                due: a.due.clone(),
                bus: a.bus.clone(),
                config: sweep_pending::Config::default(),
            },
        }
    }

    /// submit-order, behind the HTTP API.
    pub async fn http(&self, request: ApiGatewayV2httpRequest) -> ApiGatewayV2httpResponse {
        self.submit.handle(request).await
    }

    /// Invokes one event-driven function with an EventBridge event.
    pub async fn invoke(
        &self,
        function: Function,
        envelope: &Value,
    ) -> Result<Invocation, InvokeError> {
        let event: Event = serde_json::from_value(envelope.clone()).map_err(|e| InvokeError {
            error_type: "NotRetryable.InvalidEvent".to_string(),
            message: e.to_string(),
            retryable: false,
        })?;
        match function {
            Function::EvaluateOrder => run(&self.evaluate, event, |_| false).await,
            Function::StoreResult => run(&self.store_result, event, |_| false).await,
            Function::NotifySlack => run(&self.notify, event, |_| false).await,
            Function::SweepPending => run(&self.sweep, event, |r| r.is_idle()).await,
        }
    }
}

async fn run<H: EventHandler>(
    handler: &H,
    event: Event,
    quiet: impl Fn(&H::Outcome) -> bool,
) -> Result<Invocation, InvokeError> {
    match handler.handle(event).await {
        Ok(outcome) => Ok(Invocation {
            summary: outcome.to_string(),
            quiet: quiet(&outcome),
        }),
        Err(e) => Err(InvokeError::of(&e)),
    }
}

/// An API Gateway HTTP API request (payload format 2.0), as API Gateway would send it.
pub fn api_request(method: &str, path: &str, body: Option<&str>) -> ApiGatewayV2httpRequest {
    api_request_with(
        method,
        path,
        "",
        &[("content-type", "application/json")],
        body,
    )
}

/// The same with a query string and headers (header names lower-cased, as API Gateway does).
pub fn api_request_with(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> ApiGatewayV2httpRequest {
    // `{record_id}` matches one path segment, as in API Gateway: `/orders/a/b` is no route.
    let record_id = path
        .strip_prefix("/orders/")
        .filter(|id| !id.is_empty() && !id.contains('/'));
    let route_key = match (method, path.trim_end_matches('/')) {
        ("POST", "/orders") => "POST /orders".to_string(),
        ("GET", _) if record_id.is_some() => "GET /orders/{record_id}".to_string(),
        _ => "$default".to_string(),
    };
    let mut header_map = serde_json::Map::new();
    for (k, v) in headers {
        header_map.insert(k.to_ascii_lowercase(), json!(v));
    }
    let now = Timestamp::now();
    let mut request = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": query,
        "headers": header_map,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": "localhost",
            "requestId": format!("local-{}", now.as_nanosecond()),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000").to_string(),
            "timeEpoch": now.as_millisecond(),
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "energy"}
        },
        "isBase64Encoded": false
    });
    // API Gateway decodes a path parameter before it hands it to the function.
    if let Some(id) = record_id {
        request["pathParameters"] = json!({"record_id": submit_order::percent_decode(id)});
    }
    if let Some(body) = body {
        request["body"] = json!(body);
    }
    // Every field is one this function wrote; the client's path and body are strings in it.
    serde_json::from_value(request).expect("a payload 2.0 request built here reads back")
}

/// The event an EventBridge schedule rule delivers.
pub fn scheduled_event(now: Timestamp, rule: &str) -> Value {
    json!({
        "version": "0",
        "id": format!("sweep-{}", now.as_millisecond()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "region": "local",
        "resources": [format!("arn:aws:events:local:000000000000:rule/{rule}")],
        "detail": {}
    })
}

/// What Lambda's on-failure destination puts on the bus after the last retry.
pub fn on_failure_record(
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
                "functionArn": format!("arn:aws:lambda:local:000000000000:function:energy-local-{}:$LATEST", function.name()),
                "condition": "RetriesExhausted",
                "approximateInvokeCount": attempts
            },
            "requestPayload": envelope,
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "responsePayload": {"errorType": error_type, "errorMessage": message}
        }
    })
}
