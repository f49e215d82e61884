//! Serves a [`SimPlatform`] over the platform contract (`crates/auction/openapi.yaml`).

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use energy_core::calendar::AuctionId;
use energy_core::market::Market;
use energy_core::memory::ManualClock;
use energy_core::order::RecordId;
use energy_core::ports::{AuctionPlatform, Clock, ResultsStatus, Submission, Withdrawal};
use serde::Deserialize;
use serde_json::json;

use super::wire::{
    ApiError, Auction, AuctionResults, AuctionState, CurveOrder, OrderAccepted, OrderResults,
    ResultsState, auction_id, parse_auction_id,
};
use crate::sim::SimPlatform;

/// What the server serves.
#[derive(Clone)]
pub struct PlatformServer {
    pub platform: Arc<SimPlatform>,
    pub clock: Arc<dyn Clock>,
    /// Set when the clock is moved by `POST /v1/simulation/clock` only.
    pub manual_clock: Option<Arc<ManualClock>>,
    /// Required in `X-Api-Key` when set.
    pub api_key: Option<String>,
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(ApiError {
            error: code.into(),
            message: message.into(),
        }),
    )
        .into_response()
}

fn ok<T: serde::Serialize>(body: &T) -> Response {
    axum::Json(body).into_response()
}

impl PlatformServer {
    /// The routes of the contract.
    pub fn router(self) -> Router {
        let state = Arc::new(self);
        Router::new()
            .route("/v1/auctions", get(list_auctions))
            .route(
                "/v1/auctions/{auction}/orders/{order}",
                put(put_order).delete(delete_order),
            )
            .route(
                "/v1/auctions/{auction}/orders/{order}/results",
                get(order_results),
            )
            .route("/v1/auctions/{auction}/results", get(auction_results))
            .route("/v1/simulation/clock", post(set_clock))
            .layer(middleware::from_fn_with_state(state.clone(), require_key))
            .with_state(state)
    }

    /// Serves on `listener` until `shutdown` completes.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
    }
}

type Shared = State<Arc<PlatformServer>>;

async fn require_key(
    State(server): Shared,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    if let Some(key) = &server.api_key
        && headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some(key.as_str())
    {
        return error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "missing or wrong X-Api-Key",
        );
    }
    next.run(request).await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListQuery {
    delivery_date: Option<String>,
}

async fn list_auctions(State(server): Shared, Query(q): Query<ListQuery>) -> Response {
    let Some(date) = q
        .delivery_date
        .as_deref()
        .and_then(|d| d.parse::<jiff::civil::Date>().ok())
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "deliveryDate=YYYY-MM-DD is required",
        );
    };
    let rules = server.platform.rules();
    let now = server.clock.now();
    let mut out = Vec::new();
    for &market in Market::ALL {
        let auction = AuctionId {
            market,
            delivery_date: date,
        };
        let (Ok(gate), Ok(expected), Ok((start, end))) = (
            rules.gate_closure(auction),
            rules.expected_final(auction),
            rules.delivery_window(auction),
        ) else {
            return error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!("no calendar for {date}"),
            );
        };
        let state = if now < gate {
            AuctionState::Open
        } else if now >= expected {
            AuctionState::ResultsPublished
        } else {
            AuctionState::Closed
        };
        out.push(Auction {
            auction_id: auction_id(auction),
            market,
            delivery_date: date,
            state,
            gate_closure: gate,
            expected_publication: Some(expected),
            delivery_start: start,
            delivery_end: end,
        });
    }
    ok(&out)
}

/// Reads the path's ids; the error is the message for a 400.
fn ids(auction: &str, order: &str) -> Result<(AuctionId, RecordId), String> {
    let a = parse_auction_id(auction)
        .ok_or_else(|| format!("{auction:?} is not an auction id like SDAC-2026-11-28"))?;
    let o = RecordId::parse(order).map_err(|why| format!("orderId: {why}"))?;
    Ok((a, o))
}

/// The order the path names, held by the platform in that auction; else the answer saying why
/// not (400 for ids that are not ids, 404 `UnknownOrder`).
fn held(
    server: &PlatformServer,
    auction: &str,
    order: &str,
) -> Result<(AuctionId, RecordId, energy_core::order::Order), Box<Response>> {
    let (auction, record_id) = ids(auction, order)
        .map_err(|why| Box::new(error(StatusCode::BAD_REQUEST, "BadRequest", why)))?;
    match server
        .platform
        .order(&record_id)
        .filter(|o| o.auction() == auction)
    {
        Some(held) => Ok((auction, record_id, held)),
        None => Err(Box::new(error(
            StatusCode::NOT_FOUND,
            "UnknownOrder",
            format!("no order {record_id} in {auction}"),
        ))),
    }
}

/// Withdraws an order: 204, 404 when the platform does not hold it, 409 once the gate closed.
async fn delete_order(
    State(server): Shared,
    Path((auction, order)): Path<(String, String)>,
) -> Response {
    let (auction, record_id, held) = match held(&server, &auction, &order) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    match server.platform.withdraw(&held).await {
        Ok(Withdrawal::Withdrawn) => StatusCode::NO_CONTENT.into_response(),
        Ok(Withdrawal::NotHeld) => error(
            StatusCode::NOT_FOUND,
            "UnknownOrder",
            format!("no order {record_id} in {auction}"),
        ),
        Ok(Withdrawal::Refused { reason }) if server.platform.gate_passed(auction) => {
            error(StatusCode::CONFLICT, "GateClosed", reason)
        }
        Ok(Withdrawal::Refused { reason }) => {
            error(StatusCode::CONFLICT, "WithdrawalRefused", reason)
        }
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Unavailable",
            e.to_string(),
        ),
    }
}

async fn put_order(
    State(server): Shared,
    Path((auction, order)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let (auction, record_id) = match ids(&auction, &order) {
        Ok(ids) => ids,
        Err(why) => return error(StatusCode::BAD_REQUEST, "BadRequest", why),
    };
    let curve: CurveOrder = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!("order body: {e}"),
            );
        }
    };
    if curve.curves.is_empty() || curve.curves.iter().any(|c| c.steps.is_empty()) {
        return error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "an order needs curves, and every curve steps",
        );
    }
    let order = curve.into_order(auction, record_id.clone());
    match server.platform.submit(&order).await {
        Ok(Submission::Accepted {
            expected_publication,
        }) => ok(&OrderAccepted {
            auction_id: auction_id(auction),
            order_id: record_id.to_string(),
            state: "Accepted".into(),
            expected_publication,
        }),
        Ok(Submission::Refused { reason }) if server.platform.gate_passed(auction) => {
            error(StatusCode::CONFLICT, "GateClosed", reason)
        }
        Ok(Submission::Refused { reason }) => {
            error(StatusCode::UNPROCESSABLE_ENTITY, "InvalidOrder", reason)
        }
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Unavailable",
            e.to_string(),
        ),
    }
}

async fn order_results(
    State(server): Shared,
    Path((auction, order)): Path<(String, String)>,
) -> Response {
    let (auction, record_id, held) = match held(&server, &auction, &order) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let base = OrderResults {
        auction_id: auction_id(auction),
        order_id: record_id.to_string(),
        status: ResultsState::NotPublished,
        expected_publication: None,
        result: None,
    };
    match server.platform.results(&held).await {
        Ok(ResultsStatus::NotYet {
            expected_publication,
        }) => ok(&OrderResults {
            expected_publication,
            ..base
        }),
        Ok(ResultsStatus::Preliminary {
            result,
            expected_final,
        }) => ok(&OrderResults {
            status: ResultsState::Preliminary,
            expected_publication: expected_final,
            result: Some(*result),
            ..base
        }),
        Ok(ResultsStatus::Published(result)) => ok(&OrderResults {
            status: ResultsState::Published,
            result: Some(*result),
            ..base
        }),
        Ok(ResultsStatus::Unknown { reason }) => {
            error(StatusCode::NOT_FOUND, "UnknownOrder", reason)
        }
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Unavailable",
            e.to_string(),
        ),
    }
}

async fn auction_results(State(server): Shared, Path(auction): Path<String>) -> Response {
    let Some(auction) = parse_auction_id(&auction) else {
        return error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("{auction:?} is not an auction id"),
        );
    };
    let mut results = Vec::new();
    for order in server.platform.orders_of(auction) {
        match server.platform.results(&order).await {
            Ok(ResultsStatus::Published(r)) => results.push(*r),
            Ok(_) => {}
            Err(e) => {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Unavailable",
                    e.to_string(),
                );
            }
        }
    }
    let now = server.clock.now();
    let published = server
        .platform
        .rules()
        .expected_final(auction)
        .is_ok_and(|p| now >= p)
        && !results.is_empty();
    let status = if published {
        ResultsState::Published
    } else {
        ResultsState::NotPublished
    };
    ok(&AuctionResults {
        auction_id: auction_id(auction),
        status,
        results,
    })
}

#[derive(Deserialize)]
struct SetClock {
    now: jiff::Timestamp,
}

async fn set_clock(State(server): Shared, body: Bytes) -> Response {
    let Some(clock) = &server.manual_clock else {
        return error(
            StatusCode::CONFLICT,
            "NotManual",
            "the clock is not manual; start the server with --speed 0",
        );
    };
    match serde_json::from_slice::<SetClock>(&body) {
        Ok(SetClock { now }) => {
            clock.set(now);
            (StatusCode::NO_CONTENT, axum::Json(json!(null))).into_response()
        }
        Err(e) => error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("expected {{\"now\": RFC 3339}}: {e}"),
        ),
    }
}
