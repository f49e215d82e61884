//! The five handler crates behind one value, invoked the way Lambda invokes them: the HTTP API's
//! request event for submit-order, the EventBridge event for the others. Both local stacks (the
//! one-process [`crate::system`] and `energy up`) call the handlers through this.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::eventbridge::EventBridgeEvent;
use energy_core::calendar::MarketRules;
use energy_core::ports::{Ports, Retryable};
use energy_core::retry::RetryPolicy;
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::routes::Function;

/// How a failed invocation is reported: Lambda's `errorType` and `errorMessage`.
pub type InvokeError = (String, String);

/// The handlers and their configuration, over one set of ports.
pub struct Handlers {
    pub ports: Ports,
    pub submit: submit_order::Config,
    pub evaluate: evaluate_order::Config,
    pub store_result: store_result::Config,
    pub notify: notify_slack::Config,
    pub sweep: sweep_pending::Config,
}

impl Handlers {
    pub fn new(ports: Ports, rules: MarketRules, retry: RetryPolicy) -> Handlers {
        Handlers {
            ports,
            submit: submit_order::Config {
                rules: rules.clone(),
                ..Default::default()
            },
            evaluate: evaluate_order::Config { retry, rules },
            store_result: store_result::Config { retry },
            notify: notify_slack::Config { retry },
            sweep: sweep_pending::Config::default(),
        }
    }

    /// submit-order, behind the HTTP API.
    pub async fn http(&self, request: ApiGatewayV2httpRequest) -> ApiGatewayV2httpResponse {
        submit_order::handle(request, &self.ports, &self.submit).await
    }

    /// Invokes one event-driven function with an EventBridge event; the outcome as text.
    pub async fn invoke(
        &self,
        function: Function,
        envelope: &Value,
    ) -> Result<String, InvokeError> {
        let event: EventBridgeEvent<Value> = serde_json::from_value(envelope.clone())
            .map_err(|e| ("InvalidEvent".to_string(), e.to_string()))?;
        fn err<E: std::fmt::Display + Retryable>(e: E) -> InvokeError {
            let kind = if e.retryable() {
                "Retryable"
            } else {
                "NotRetryable"
            };
            (kind.to_string(), e.to_string())
        }
        let ports = &self.ports;
        match function {
            Function::EvaluateOrder => evaluate_order::handle(event, ports, &self.evaluate)
                .await
                .map(|o| format!("{o:?}"))
                .map_err(err),
            Function::StoreResult => store_result::handle(event, ports, &self.store_result)
                .await
                .map(|o| format!("{o:?}"))
                .map_err(err),
            Function::NotifySlack => notify_slack::handle(event, ports, &self.notify)
                .await
                .map(|o| format!("{o:?}"))
                .map_err(err),
            Function::SweepPending => sweep_pending::handle(event, ports, &self.sweep)
                .await
                .map(|o| format!("{o:?}"))
                .map_err(err),
        }
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
    serde_json::from_value(request).unwrap_or_default()
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
