//! submit-order on its own, against in-memory ports.

use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use energy_core::memory::{InMemoryBus, InMemoryOrderStore, ManualClock};
use energy_core::ports::OrderStore;
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

/// Found by a hostile run: a client retrying a POST that was cut off after the orders were
/// stored got "duplicate", and its orders waited minutes for the sweeper, past the gate.
#[tokio::test]
async fn a_repost_announces_again_an_order_not_yet_handed_over_and_only_such() {
    let (orders, bus, h) = handler();
    let post = |id: &str| {
        request(
            "POST",
            "/orders",
            Some("application/json"),
            Some(&batch(id)),
        )
    };
    assert_eq!(h.handle(post("r-1")).await.status_code, 202);
    assert_eq!(bus.of_type("OrderSubmitted").len(), 1);
    let again = h.handle(post("r-1")).await;
    assert_eq!(response_body(&again)["orders"][0]["status"], "duplicate");
    assert_eq!(bus.of_type("OrderSubmitted").len(), 2, "announced again");
    // Once handed over, a repost announces nothing.
    let id = energy_core::order::RecordId::parse("r-1").unwrap();
    let stored = orders.get(&id).await.unwrap().unwrap();
    let handed = stored
        .apply(
            energy_core::lifecycle::Transition::HandedOver {
                due_at: "2026-01-14T11:45:00Z".parse().unwrap(),
            },
            "2026-01-14T08:01:00Z".parse().unwrap(),
        )
        .unwrap();
    orders.replace(&handed, stored.expected()).await.unwrap();
    h.handle(post("r-1")).await;
    assert_eq!(bus.of_type("OrderSubmitted").len(), 2);
}

fn one(id: &str, price: &str) -> String {
    json!({
        "record_id": id, "market": "SDAC", "delivery_date": "2026-01-15", "zone": "NL",
        "portfolio": "P", "side": "BUY",
        "periods": [{"mtu_start": "2026-01-15T06:00:00Z", "steps": [{"price": price, "quantity": "1.0"}]}]
    })
    .to_string()
}

#[tokio::test]
async fn delete_withdraws_an_open_order_once_and_put_replaces_its_body() {
    let (orders, bus, h) = handler();
    let post = |id: &str| {
        request(
            "POST",
            "/orders",
            Some("application/json"),
            Some(&batch(id)),
        )
    };
    h.handle(post("c-1")).await;
    h.handle(post("c-2")).await;

    let cancel = h.handle(request("DELETE", "/orders/c-1", None, None)).await;
    assert_eq!(cancel.status_code, 202, "{:?}", response_body(&cancel));
    assert_eq!(response_body(&cancel)["state"], "CANCELLING");
    let due = bus.of_type("OrderEvaluationDue");
    assert_eq!(due.len(), 1);
    assert_eq!(due[0]["detail"]["trigger"], "CANCEL");
    let twice = h.handle(request("DELETE", "/orders/c-1", None, None)).await;
    assert_eq!(
        twice.status_code, 200,
        "a second withdrawal changes nothing"
    );
    assert_eq!(bus.of_type("OrderEvaluationDue").len(), 1);
    let amend_cancelled = h
        .handle(request(
            "PUT",
            "/orders/c-1",
            Some("application/json"),
            Some(&one("c-1", "60.00")),
        ))
        .await;
    assert_eq!(amend_cancelled.status_code, 409);

    let amend = h
        .handle(request(
            "PUT",
            "/orders/c-2",
            Some("application/json"),
            Some(&one("c-2", "70.00")),
        ))
        .await;
    assert_eq!(amend.status_code, 202, "{:?}", response_body(&amend));
    let id = energy_core::order::RecordId::parse("c-2").unwrap();
    let stored = orders.get(&id).await.unwrap().unwrap();
    assert_eq!(
        stored.order.periods[0].steps[0].price,
        energy_core::money::PriceCents(7_000)
    );
    assert_eq!(bus.of_type("OrderAmended").len(), 1);
    let same = h
        .handle(request(
            "PUT",
            "/orders/c-2",
            Some("application/json"),
            Some(&one("c-2", "70.00")),
        ))
        .await;
    assert_eq!(same.status_code, 200, "the same body again changes nothing");
    assert_eq!(bus.of_type("OrderAmended").len(), 1);

    let other_id = h
        .handle(request(
            "PUT",
            "/orders/c-2",
            Some("application/json"),
            Some(&one("c-3", "70.00")),
        ))
        .await;
    assert_eq!(other_id.status_code, 400);
    assert_eq!(response_body(&other_id)["error"], "record_id_mismatch");
    let bad = h
        .handle(request(
            "PUT",
            "/orders/c-2",
            Some("application/json"),
            Some(&one("c-2", "99999.00")),
        ))
        .await;
    assert_eq!(bad.status_code, 400);
    let errors = response_body(&bad)["errors"].clone();
    assert_eq!(errors[0]["path"], "$.periods[0].steps[0].price", "{errors}");
    let missing = h
        .handle(request("DELETE", "/orders/nobody", None, None))
        .await;
    assert_eq!(missing.status_code, 404);
}

#[tokio::test]
async fn after_the_gate_less_its_margin_nothing_can_be_withdrawn_or_amended() {
    let clock = Arc::new(ManualClock::new("2026-01-14T08:00:00Z".parse().unwrap()));
    let orders = Arc::new(InMemoryOrderStore::new());
    let bus = Arc::new(InMemoryBus::new(clock.clone()));
    let h = SubmitOrder {
        clock: clock.clone(),
        orders: orders.clone(),
        bus,
        config: Config::default(),
    };
    h.handle(request(
        "POST",
        "/orders",
        Some("application/json"),
        Some(&batch("g-1")),
    ))
    .await;
    // The SDAC gate for 2026-01-15 is 11:00Z; changes stop 60 s before.
    clock.set("2026-01-14T10:59:00Z".parse().unwrap());
    let cancel = h.handle(request("DELETE", "/orders/g-1", None, None)).await;
    assert_eq!(cancel.status_code, 409);
    assert_eq!(response_body(&cancel)["error"], "gate_closed");
    let amend = h
        .handle(request(
            "PUT",
            "/orders/g-1",
            Some("application/json"),
            Some(&one("g-1", "60.00")),
        ))
        .await;
    assert_eq!(amend.status_code, 409);
    clock.set("2026-01-14T10:58:59Z".parse().unwrap());
    let cancel = h.handle(request("DELETE", "/orders/g-1", None, None)).await;
    assert_eq!(cancel.status_code, 202, "a second before the margin");
}

#[tokio::test]
async fn an_order_that_is_no_longer_open_is_not_withdrawn_saying_its_state() {
    let (orders, _bus, h) = handler();
    h.handle(request(
        "POST",
        "/orders",
        Some("application/json"),
        Some(&batch("s-1")),
    ))
    .await;
    let id = energy_core::order::RecordId::parse("s-1").unwrap();
    let stored = orders.get(&id).await.unwrap().unwrap();
    let t: jiff::Timestamp = "2026-01-14T08:01:00Z".parse().unwrap();
    let failure = energy_core::result::Failure {
        reason: energy_core::result::FailureReason::InvalidAtPlatform,
        message: "x".into(),
        failed_at: t,
    };
    let failed = stored
        .apply(
            energy_core::lifecycle::Transition::Fail { failure, due_at: t },
            t,
        )
        .unwrap();
    orders.replace(&failed, stored.expected()).await.unwrap();
    let cancel = h.handle(request("DELETE", "/orders/s-1", None, None)).await;
    assert_eq!(cancel.status_code, 409);
    let body = response_body(&cancel);
    assert_eq!(body["error"], "not_open");
    assert_eq!(
        body["message"],
        "order s-1 is FAILED: it can no longer be withdrawn"
    );
}

/// A store whose writes always lose, or always fail.
struct Hostile {
    inner: Arc<InMemoryOrderStore>,
    fail: bool,
}

#[async_trait::async_trait]
impl OrderStore for Hostile {
    async fn insert(
        &self,
        r: &energy_core::lifecycle::OrderRecord,
    ) -> Result<energy_core::ports::Inserted, energy_core::ports::PortError> {
        self.inner.insert(r).await
    }
    async fn insert_batch(
        &self,
        b: &[energy_core::lifecycle::OrderRecord],
    ) -> Result<Vec<energy_core::ports::Inserted>, energy_core::ports::PortError> {
        if self.fail {
            return Err(energy_core::ports::PortError::transient(
                "orders",
                "throttled",
            ));
        }
        self.inner.insert_batch(b).await
    }
    async fn get(
        &self,
        id: &energy_core::order::RecordId,
    ) -> Result<Option<energy_core::lifecycle::OrderRecord>, energy_core::ports::PortError> {
        self.inner.get(id).await
    }
    async fn replace(
        &self,
        _: &energy_core::lifecycle::OrderRecord,
        _: energy_core::lifecycle::Expected,
    ) -> Result<energy_core::ports::Replaced, energy_core::ports::PortError> {
        Ok(energy_core::ports::Replaced::Conflict)
    }
}

#[tokio::test]
async fn a_store_that_fails_or_keeps_losing_is_a_503_the_client_may_retry() {
    let (orders, bus, h) = handler();
    h.handle(request(
        "POST",
        "/orders",
        Some("application/json"),
        Some(&batch("h-1")),
    ))
    .await;
    let with = |fail: bool| SubmitOrder {
        clock: Arc::new(ManualClock::new("2026-01-14T08:00:00Z".parse().unwrap())),
        orders: Arc::new(Hostile {
            inner: orders.clone(),
            fail,
        }),
        bus: bus.clone(),
        config: Config::default(),
    };
    let busy = with(false)
        .handle(request("DELETE", "/orders/h-1", None, None))
        .await;
    assert_eq!(busy.status_code, 503);
    assert_eq!(response_body(&busy)["error"], "busy");
    let down = with(true)
        .handle(request(
            "POST",
            "/orders",
            Some("application/json"),
            Some(&batch("h-2")),
        ))
        .await;
    assert_eq!(down.status_code, 503);
    assert_eq!(response_body(&down)["error"], "store_unavailable");
}

#[tokio::test]
async fn answers_say_exactly_what_is_wrong() {
    let (_orders, _bus, h) = handler();
    let post =
        |body: String| request("POST", "/orders", Some("application/json"), Some(&body)).clone();
    let one_order: Value = serde_json::from_str(&batch("z-0")).unwrap();
    let many = |n: usize| {
        let orders: Vec<Value> = (0..n)
            .map(|i| {
                let mut o = one_order[0].clone();
                o["record_id"] = json!(format!("z-{i}"));
                o
            })
            .collect();
        json!(orders).to_string()
    };
    let r = h.handle(post(many(101))).await;
    assert_eq!(r.status_code, 413);
    assert_eq!(
        response_body(&r)["message"],
        "101 orders in one request; at most 100 per POST /orders"
    );
    let r = h
        .handle(post(format!("[{}]", vec!["1"; 1001].join(","))))
        .await;
    assert_eq!(
        response_body(&r)["message"],
        "more than 1000 orders in one request; at most 100 per POST /orders"
    );
    // A conflict names only the conflicting id; a duplicate carries no message.
    assert_eq!(h.handle(post(many(2))).await.status_code, 202);
    let mut changed: Value = serde_json::from_str(&many(2)).unwrap();
    changed[1]["portfolio"] = json!("Q");
    let r = h.handle(post(changed.to_string())).await;
    assert_eq!(r.status_code, 409);
    let body = response_body(&r);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("record_id z-1 already names a different order"),
        "{body}"
    );
    assert!(body["orders"][0].get("message").is_none(), "{body}");
    assert_eq!(body["orders"][0]["status"], "duplicate");
    // A PUT body's problems are named from its own root.
    let bad = h
        .handle(request(
            "PUT",
            "/orders/z-0",
            Some("application/json"),
            Some(&one("z-0", "99999.00")),
        ))
        .await;
    let errors = response_body(&bad)["errors"].clone();
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("$.periods[0].steps[0].price"),
        "{errors}"
    );
}

#[tokio::test]
async fn a_thousand_orders_are_counted_and_more_are_more_than_a_thousand() {
    let (_orders, _bus, h) = handler();
    let one: Value = serde_json::from_str(&batch("t-0")).unwrap();
    let orders: Vec<Value> = (0..1000)
        .map(|i| {
            let mut o = one[0].clone();
            o["record_id"] = json!(format!("t-{i}"));
            o
        })
        .collect();
    let r = h
        .handle(request(
            "POST",
            "/orders",
            Some("application/json"),
            Some(&json!(orders).to_string()),
        ))
        .await;
    assert_eq!(r.status_code, 413);
    assert_eq!(
        response_body(&r)["message"],
        "1000 orders in one request; at most 100 per POST /orders"
    );
}
