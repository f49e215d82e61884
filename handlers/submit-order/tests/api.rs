//! submit-order on its own, against in-memory ports.

use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use energy_core::memory::{InMemoryBus, InMemoryOrderStore, ManualClock};
use serde_json::{Value, json};
use submit_order::{Config, SubmitOrder, response_body};

fn handler() -> (Arc<InMemoryOrderStore>, Arc<InMemoryBus>, SubmitOrder) {
    let clock = Arc::new(ManualClock::new("2026-01-14T08:00:00Z".parse().unwrap()));
    let orders = Arc::new(InMemoryOrderStore::new());
    let bus = Arc::new(InMemoryBus::new(clock.clone()));
    let handler = SubmitOrder {
        clock,
        orders: orders.clone(),
        bus: bus.clone(),
        config: Config::default(),
    };
    (orders, bus, handler)
}

fn request(
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Option<&str>,
) -> ApiGatewayV2httpRequest {
    let mut headers = serde_json::Map::new();
    if let Some(ct) = content_type {
        headers.insert("content-type".into(), json!(ct));
    }
    let mut r = json!({
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
        "headers": headers,
        "requestContext": {"accountId": "1", "apiId": "a", "domainName": "d", "requestId": "r",
            "routeKey": "$default", "stage": "$default", "time": "14/Jan/2026:08:00:00 +0000",
            "timeEpoch": 0, "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
            "sourceIp": "127.0.0.1", "userAgent": "t"}},
        "isBase64Encoded": false
    });
    if let Some(b) = body {
        r["body"] = json!(b);
    }
    serde_json::from_value(r).unwrap()
}

fn batch(id: &str) -> String {
    json!([{
        "record_id": id, "market": "SDAC", "delivery_date": "2026-01-15", "zone": "NL",
        "portfolio": "P", "side": "BUY",
        "periods": [{"mtu_start": "2026-01-15T06:00:00Z", "steps": [{"price": "50.00", "quantity": "1.0"}]}]
    }])
    .to_string()
}

#[tokio::test]
async fn a_valid_batch_is_stored_announced_and_readable() {
    let (orders, bus, h) = handler();
    let resp = h
        .handle(request(
            "POST",
            "/orders",
            Some("application/json"),
            Some(&batch("a-1")),
        ))
        .await;
    assert_eq!(resp.status_code, 202);
    assert_eq!(orders.inserts(), 1);
    assert_eq!(bus.of_type("OrderSubmitted").len(), 1);
    let resp = h.handle(request("GET", "/orders/a-1", None, None)).await;
    assert_eq!(resp.status_code, 200);
    let body: Value = response_body(&resp);
    assert_eq!(body["state"], "RECEIVED");
}

#[tokio::test]
async fn a_post_that_is_not_json_is_415_and_stores_nothing() {
    let (orders, _, h) = handler();
    let resp = h
        .handle(request(
            "POST",
            "/orders",
            Some("text/plain"),
            Some(&batch("a-2")),
        ))
        .await;
    assert_eq!(resp.status_code, 415);
    assert_eq!(orders.inserts(), 0);
}
