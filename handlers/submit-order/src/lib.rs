//! submit-order: the HTTP API (API Gateway HTTP API, payload format 2.0).
//!
//! - `POST /orders` takes a batch (a JSON array, at most [`energy_core::calendar::OrderLimits`]'s
//!   `max_batch`, 100 by default) as `application/json` (anything else is 415: a web page cannot
//!   post orders with a form or a `text/plain` body). The batch is validated as a whole: one bad
//!   field anywhere and nothing is stored, and the 400 lists every problem with its path. A
//!   valid batch is written in one transaction, each order on condition that its `record_id`
//!   (the idempotency key) is new, then `OrderSubmitted` is published for the orders that are
//!   new. The answer is 202 with one status per order (`accepted` or `duplicate`), or 409 if a
//!   known `record_id` came with a different order: then nothing of the batch is stored.
//!   A repost of a stored order is a duplicate at any time, even after its gate closed.
//! - `GET /orders/{record_id}` answers the order's state, attempts and result.
//! - `DELETE /orders/{record_id}` withdraws an order until its gate (less the safety margin):
//!   it becomes CANCELLING and evaluate-order withdraws it at the platform, then CANCELLED
//!   (answer 202). Again on a CANCELLING or CANCELLED order: 200, nothing more happens. After
//!   the gate, or once the order's results are out or it has failed: 409.
//! - `PUT /orders/{record_id}` replaces an order's body until its gate (less the margin), with
//!   the same validation as `POST`: the order is RECEIVED again with the new body, and
//!   `OrderAmended` tells evaluate-order to hand it over, replacing the old body at the
//!   platform (answer 202). The same body again: 200, nothing happens. Refused with 409 as
//!   `DELETE` is, and with 400 when the body's `record_id` is not the path's.
//!
//! Every write is conditional on the state and version read; one that loses to a concurrent
//! write (a hand-over) reads again and decides again.
//!
//! A publish that fails after the orders are stored does not fail the request: each new order
//! is stored with a `due_at` a little ahead, so the sweeper hands it to the evaluator if its
//! `OrderSubmitted` never arrives.

mod http_api;

use energy_core::calendar::MarketRules;
use energy_core::events::{
    DomainEvent, OrderAmended, OrderEvaluationDue, OrderRef, OrderSubmitted, Trigger,
};
use energy_core::lifecycle::{OrderRecord, OrderState, Transition};
use energy_core::order::{Order, RecordId};
use std::sync::Arc;

use energy_core::ports::{Clock, EventPublisher, Inserted, OrderStore, PortError, Replaced};
use energy_core::validate::{BatchError, Checked, FieldError, parse_batch};
use jiff::SignedDuration;
use serde::Serialize;
use serde_json::json;

pub use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
pub use http_api::{Request, percent_decode, response_body};

/// Settings of the handler.
#[derive(Debug, Clone)]
pub struct Config {
    pub rules: MarketRules,
    /// How long after submission the sweeper treats an order whose `OrderSubmitted` was not
    /// acted on as lost.
    pub submitted_grace: SignedDuration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            rules: MarketRules::default(),
            submitted_grace: SignedDuration::from_mins(2),
        }
    }
}

/// What happened to one order of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// New; stored and announced.
    Accepted,
    /// Already known with the same content: nothing new was stored or announced.
    Duplicate,
    /// Already known with different content.
    Conflict,
    /// New, but not stored because another order of the batch conflicts.
    NotStored,
}

#[derive(Debug, Clone, Serialize)]
struct OrderStatus {
    record_id: RecordId,
    status: Status,
    state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

/// submit-order with what it may touch: the orders table and the bus (and the clock).
pub struct SubmitOrder {
    pub clock: Arc<dyn Clock>,
    pub orders: Arc<dyn OrderStore>,
    pub bus: Arc<dyn EventPublisher>,
    pub config: Config,
}

impl SubmitOrder {
    /// Handles one API request. Never fails: every outcome is an HTTP answer.
    pub async fn handle(&self, request: ApiGatewayV2httpRequest) -> ApiGatewayV2httpResponse {
        match Request::from_event(&request) {
            Request::PostOrders => match http_api::json_body_text(&request) {
                Ok(body) => self.post_orders(&body).await,
                Err(resp) => *resp,
            },
            Request::GetOrder(id) => self.get_order(&id).await,
            Request::CancelOrder(id) => self.cancel_order(&id).await,
            Request::AmendOrder(id) => match http_api::json_body_text(&request) {
                Ok(body) => self.amend_order(&id, &body).await,
                Err(resp) => *resp,
            },
            Request::MethodNotAllowed { allowed } => http_api::method_not_allowed(allowed),
            Request::NotFound(path) => http_api::error(
                404,
                "not_found",
                format!("no route for {path}; try POST /orders or GET /orders/{{record_id}}"),
            ),
        }
    }

    async fn post_orders(&self, body: &str) -> ApiGatewayV2httpResponse {
        let config = &self.config;
        let now = self.clock.now();
        let Checked { orders, late } = match parse_batch(body, &config.rules, now) {
            Ok(checked) => checked,
            Err(BatchError::TooLarge { count, max }) => {
                let count = if count > energy_core::validate::MAX_ARRAY {
                    format!("more than {}", energy_core::validate::MAX_ARRAY)
                } else {
                    count.to_string()
                };
                return http_api::error(
                    413,
                    "batch_too_large",
                    format!("{count} orders in one request; at most {max} per POST /orders"),
                );
            }
            Err(BatchError::Invalid(errors)) => return invalid(errors),
        };
        // Idempotency comes before the gate: an order stored before the gate closed is reposted
        // as a duplicate at any time (a client whose first POST was cut off retries safely).
        let mut closed = Vec::new();
        for (i, error) in late {
            match self.orders.get(&orders[i].record_id).await {
                Ok(Some(_)) => {} // duplicate or conflict: the batch insert tells which
                Ok(None) => closed.push(error),
                Err(e) => return store_unavailable(&e, &[]),
            }
        }
        if !closed.is_empty() {
            return invalid(closed);
        }
        let due_at = now.saturating_add(config.submitted_grace).unwrap_or(now);
        let records: Vec<OrderRecord> = orders
            .into_iter()
            .map(|order| OrderRecord::received(order, now, due_at))
            .collect();
        let answers = match self.orders.insert_batch(&records).await {
            Ok(answers) => answers,
            Err(e) => return store_unavailable(&e, &records),
        };
        let mut statuses = Vec::with_capacity(records.len());
        let mut announce = Vec::new();
        for (record, answer) in records.iter().zip(answers) {
            statuses.push(match answer {
            Inserted::New => {
                tracing::info!(record_id = %record.order.record_id, "order accepted");
                announce.push(DomainEvent::Submitted(submitted(&record.order, record)));
                OrderStatus {
                    record_id: record.order.record_id.clone(),
                    status: Status::Accepted,
                    state: record.state.to_string(),
                    message: None,
                }
            }
            Inserted::Exists(existing) => {
                // A client retrying a POST that was cut off: an order still waiting for its
                // hand-over is announced again (evaluate-order is idempotent), so it need not
                // wait for the sweeper.
                if existing.order == record.order && existing.state == OrderState::Received {
                    announce.push(DomainEvent::Submitted(submitted(&existing.order, &existing)));
                }
                compare(&record.order, &existing)
            }
            Inserted::Withheld => OrderStatus {
                record_id: record.order.record_id.clone(),
                status: Status::NotStored,
                state: "NONE".to_string(),
                message: Some(
                    "not stored: another order of the batch conflicts, and a batch is stored whole or not at all"
                        .to_string(),
                ),
            },
        });
        }
        energy_core::crash::point(energy_core::crash::SUBMIT_AFTER_INSERT);
        self.publish(&announce).await;
        let conflict = statuses.iter().any(|s| s.status == Status::Conflict);
        let status = if conflict { 409 } else { 202 };
        let mut body = json!({"orders": statuses});
        if conflict {
            let ids: Vec<String> = statuses
                .iter()
                .filter(|s| s.status == Status::Conflict)
                .map(|s| s.record_id.to_string())
                .collect();
            body["error"] = json!("record_id_conflict");
            body["message"] = json!(format!(
                "record_id {} already names a different order; nothing of this batch was stored; use a new record_id for a new order",
                ids.join(", ")
            ));
        }
        http_api::json(status, &body)
    }
}

/// 409 if the auction of `order` takes no more changes at `now` (its gate less the margin).
fn gate_closed(
    rules: &MarketRules,
    order: &Order,
    now: jiff::Timestamp,
    what: &str,
) -> Option<ApiGatewayV2httpResponse> {
    let auction = order.auction();
    let (last, gate) = match (rules.last_order_time(auction), rules.gate_closure(auction)) {
        (Ok(last), Ok(gate)) => (last, gate),
        (Err(e), _) | (_, Err(e)) => {
            return Some(http_api::error(409, "gate_closed", e.to_string()));
        }
    };
    (now >= last).then(|| {
        http_api::error(
            409,
            "gate_closed",
            format!(
                "order {} can no longer be {what}: the {auction} gate closes at {gate} and takes changes until {last}",
                order.record_id
            ),
        )
    })
}

/// One order (a `PUT` body), validated as `POST` validates a batch; error paths from `$`.
fn parse_one(
    body: &str,
    rules: &MarketRules,
    now: jiff::Timestamp,
) -> Result<Order, Box<ApiGatewayV2httpResponse>> {
    if !body.trim_start().starts_with('{') {
        return Err(Box::new(invalid(vec![FieldError::new(
            "$",
            "type",
            "$: a PUT body is one order, a JSON object",
        )])));
    }
    match parse_batch(&format!("[{body}]"), rules, now) {
        Ok(Checked { mut orders, .. }) if orders.len() == 1 => Ok(orders.remove(0)),
        Ok(_) => Err(Box::new(invalid(vec![FieldError::new(
            "$",
            "type",
            "$: a PUT body is one order",
        )]))),
        Err(BatchError::Invalid(errors)) => Err(Box::new(invalid(
            errors
                .into_iter()
                .map(|e| FieldError {
                    path: e.path.replacen("$[0]", "$", 1),
                    message: e.message.replacen("$[0]", "$", 1),
                    ..e
                })
                .collect(),
        ))),
        Err(BatchError::TooLarge { .. }) => Err(Box::new(http_api::error(
            413,
            "body_too_large",
            "a PUT body is one order".to_string(),
        ))),
    }
}

/// Five writes in a row lost to concurrent ones: the client may retry.
fn busy(id: &str) -> ApiGatewayV2httpResponse {
    http_api::error(
        503,
        "busy",
        format!("order {id} kept changing while this request was decided; retry"),
    )
}

fn invalid(errors: Vec<FieldError>) -> ApiGatewayV2httpResponse {
    let summary = match errors.len() {
        1 => "1 problem in the request; nothing was stored".to_string(),
        n => format!("{n} problems in the request; nothing was stored"),
    };
    http_api::json(
        400,
        &json!({"error": "invalid_orders", "message": summary, "errors": errors}),
    )
}

/// The store failed: the batch is one transaction, so nothing of it was stored and the request
/// can be retried as is.
fn store_unavailable(e: &PortError, _records: &[OrderRecord]) -> ApiGatewayV2httpResponse {
    tracing::error!(error = %e, "order store failed");
    http_api::error(
        503,
        "store_unavailable",
        format!("{e}; nothing of this batch was stored; the request can be retried as is"),
    )
}

fn submitted(order: &Order, record: &OrderRecord) -> OrderSubmitted {
    OrderSubmitted {
        order: OrderRef::from(order),
        mtu_count: order.periods.len() as u32,
        submitted_at: record.submitted_at,
    }
}

fn compare(order: &Order, existing: &OrderRecord) -> OrderStatus {
    let same = existing.order == *order;
    OrderStatus {
        record_id: order.record_id.clone(),
        status: if same {
            Status::Duplicate
        } else {
            Status::Conflict
        },
        state: existing.state.to_string(),
        message: (!same).then(|| {
            format!(
                "record_id {} already names a different order",
                order.record_id
            )
        }),
    }
}

impl SubmitOrder {
    /// Publishes, logging a failure: the orders are stored and the sweeper will find them.
    async fn publish(&self, events: &[DomainEvent]) {
        if events.is_empty() {
            return;
        }
        if let Err(e) = self.bus.publish(events).await {
            tracing::warn!(error = %e, "OrderSubmitted not published; the sweeper will pick these orders up");
        }
    }

    async fn get_order(&self, id: &str) -> ApiGatewayV2httpResponse {
        match self.stored(id).await {
            Ok(record) => http_api::json(200, &view(&record)),
            Err(resp) => *resp,
        }
    }

    /// The stored order named by a path's id, or the answer saying why not.
    async fn stored(&self, id: &str) -> Result<OrderRecord, Box<ApiGatewayV2httpResponse>> {
        let record_id = RecordId::parse(id).map_err(|why| {
            Box::new(http_api::error(
                400,
                "invalid_record_id",
                format!("record_id {id:?}: {why}"),
            ))
        })?;
        match self.orders.get(&record_id).await {
            Ok(Some(record)) => Ok(record),
            Ok(None) => Err(Box::new(http_api::error(
                404,
                "not_found",
                format!("no order {record_id} (orders are kept 24 h after they become final)"),
            ))),
            Err(e) => Err(Box::new(http_api::error(
                503,
                "store_unavailable",
                e.to_string(),
            ))),
        }
    }

    /// 409 unless the desk may still change `record` at `now`: open (RECEIVED or PENDING) and
    /// before its gate less the safety margin.
    fn changeable(
        &self,
        record: &OrderRecord,
        now: jiff::Timestamp,
        what: &str,
    ) -> Option<ApiGatewayV2httpResponse> {
        if !record.state.is_open() {
            return Some(http_api::error(
                409,
                "not_open",
                format!(
                    "order {} is {}: it can no longer be {what}",
                    record.order.record_id, record.state
                ),
            ));
        }
        gate_closed(&self.config.rules, &record.order, now, what)
    }

    /// `DELETE /orders/{record_id}`.
    async fn cancel_order(&self, id: &str) -> ApiGatewayV2httpResponse {
        // A write lost to a concurrent one (a hand-over) is decided again on what it wrote.
        for _ in 0..5 {
            let record = match self.stored(id).await {
                Ok(record) => record,
                Err(resp) => return *resp,
            };
            if matches!(record.state, OrderState::Cancelling | OrderState::Cancelled) {
                return http_api::json(200, &view(&record));
            }
            let now = self.clock.now();
            if let Some(refused) = self.changeable(&record, now, "withdrawn") {
                return refused;
            }
            let cancel = Transition::CancelRequested { due_at: now };
            let next = match record.apply(cancel, now) {
                Ok(next) => next,
                Err(e) => return http_api::error(409, "not_open", e.to_string()),
            };
            match self.orders.replace(&next, record.expected()).await {
                Ok(Replaced::Applied) => {
                    tracing::info!(record_id = %record.order.record_id, "order withdrawn by the desk");
                    let due = OrderEvaluationDue {
                        record_id: record.order.record_id.clone(),
                        attempt: next.attempt,
                        due_at: now,
                        trigger: Trigger::Cancel,
                    };
                    self.publish(&[DomainEvent::EvaluationDue(due)]).await;
                    return http_api::json(202, &view(&next));
                }
                Ok(Replaced::Conflict) => continue,
                Err(e) => return store_unavailable(&e, &[]),
            }
        }
        busy(id)
    }

    /// `PUT /orders/{record_id}`.
    async fn amend_order(&self, id: &str, body: &str) -> ApiGatewayV2httpResponse {
        let now = self.clock.now();
        let order = match parse_one(body, &self.config.rules, now) {
            Ok(order) => order,
            Err(resp) => return *resp,
        };
        if order.record_id.as_str() != id {
            return http_api::error(
                400,
                "record_id_mismatch",
                format!(
                    "$.record_id: {} is not the order at /orders/{id}; a new order is a POST /orders",
                    order.record_id
                ),
            );
        }
        if let Some(refused) = gate_closed(&self.config.rules, &order, now, "amended to") {
            return refused;
        }
        for _ in 0..5 {
            let record = match self.stored(id).await {
                Ok(record) => record,
                Err(resp) => return *resp,
            };
            if record.order == order && record.state.is_open() {
                return http_api::json(200, &view(&record));
            }
            let now = self.clock.now();
            if let Some(refused) = self.changeable(&record, now, "amended") {
                return refused;
            }
            let due_at = now
                .saturating_add(self.config.submitted_grace)
                .unwrap_or(now);
            let amend = Transition::Amended {
                order: order.clone(),
                due_at,
            };
            let next = match record.apply(amend, now) {
                Ok(next) => next,
                Err(e) => return http_api::error(409, "not_open", e.to_string()),
            };
            match self.orders.replace(&next, record.expected()).await {
                Ok(Replaced::Applied) => {
                    tracing::info!(record_id = %order.record_id, "order amended by the desk");
                    let amended = OrderAmended {
                        order: OrderRef::from(&order),
                        mtu_count: order.periods.len() as u32,
                        amended_at: now,
                    };
                    self.publish(&[DomainEvent::Amended(amended)]).await;
                    return http_api::json(202, &view(&next));
                }
                Ok(Replaced::Conflict) => continue,
                Err(e) => return store_unavailable(&e, &[]),
            }
        }
        busy(id)
    }
}

/// The public view of a record.
pub fn view(record: &OrderRecord) -> serde_json::Value {
    json!({
        "record_id": record.order.record_id,
        "state": record.state,
        "final": record.state.is_final(),
        "attempt": record.checks(),
        "submitted_at": record.submitted_at,
        "updated_at": record.updated_at,
        "expires_at": (record.ttl != energy_core::lifecycle::NO_EXPIRY)
            .then(|| jiff::Timestamp::from_second(record.ttl).ok())
            .flatten(),
        "due_at": record.due_at,
        "order": record.order,
        "result": record.result,
        "result_key": record.result_key,
        "failure": record.failure,
        "preliminary": record.preliminary.as_ref().map(|p| json!({
            "result": p.result,
            "withdrawn_at": p.withdrawn_at,
        })),
    })
}
