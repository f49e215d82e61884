//! The web console of `energy up` at `/console`: the desk's orders, one order's story, the
//! auction curve where it cleared, and the bus. Server-rendered HTML with one small script that
//! refreshes the live parts and sends the cancel and amend requests; every asset is built into
//! the binary, nothing comes from the internet.
//!
//! Pages: `/console` (orders), `/console/orders/{id}` (one order), `/console/auction` (a zone
//! and MTU's supply and demand curves), `/console/bus` (rules, event tail, schedules, dead
//! letters, schemas). `/console/live/...` answer the live parts as HTML fragments.

mod auction;
mod bus;
mod html;
mod orders;

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use energy_auction::sim::SimPlatform;
use http::StatusCode;

use crate::up::shared::Shared;

/// What the console reads: the stack and its simulated platform.
pub struct Console {
    pub shared: Arc<Shared>,
    pub sim: Arc<SimPlatform>,
}

pub fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/console", get(orders::page))
        .route("/console/", get(orders::page))
        .route("/console/live/orders", get(orders::live_list))
        .route("/console/orders/{id}", get(orders::order_page))
        .route("/console/live/orders/{id}", get(orders::live_order))
        .route("/console/auction", get(auction::page))
        .route("/console/auction/steps.json", get(auction::steps))
        .route("/console/bus", get(bus::page))
        .route("/console/live/tail", get(bus::live_tail))
        .route("/console/live/dead-letters", get(bus::live_dead_letters))
        .route("/console/dlq/redrive", post(bus::redrive))
        .route("/console/schemas/{name}", get(bus::schema))
        .route("/console/assets/console.css", get(css))
        .route("/console/assets/console.js", get(js))
        .with_state(console)
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", include_str!("console.css"))
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", include_str!("console.js"))
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}
