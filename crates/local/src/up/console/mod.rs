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
        .layer(axum::middleware::from_fn(guard))
        .with_state(console)
}

/// Every console response: answered only to loopback host names (a page elsewhere cannot
/// reach it through DNS rebinding), never framed by another page (no clickjacking of
/// Withdraw), and a state-changing request only from the console itself (no cross-site form
/// post).
async fn guard(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
    if !matches!(name, "127.0.0.1" | "localhost" | "[::1]") {
        return (
            StatusCode::FORBIDDEN,
            format!("the console answers on 127.0.0.1 and localhost only, not {host:?}"),
        )
            .into_response();
    }
    if request.method() != http::Method::GET {
        let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok());
        let cross_site = headers
            .get("sec-fetch-site")
            .and_then(|s| s.to_str().ok())
            .is_some_and(|s| s == "cross-site" || s == "same-site");
        let foreign =
            origin.is_some_and(|o| o.strip_prefix("http://").is_none_or(|rest| rest != host));
        if cross_site || foreign {
            return (
                StatusCode::FORBIDDEN,
                "a change through the console must come from the console's own pages",
            )
                .into_response();
        }
    }
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::X_FRAME_OPTIONS,
        http::HeaderValue::from_static("DENY"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        http::HeaderValue::from_static("frame-ancestors 'none'"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        http::HeaderValue::from_static("nosniff"),
    );
    response
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
