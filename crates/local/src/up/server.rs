//! The HTTP API on loopback: every request becomes an API Gateway HTTP API (payload 2.0) event
//! for submit-order, and its response goes back as API Gateway would send it.

use std::sync::Arc;

use aws_lambda_events::encodings::Body as LambdaBody;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use http::StatusCode;

use crate::handlers::{Handlers, api_request_with};

/// API Gateway's payload limit.
const MAX_BODY: usize = 10 * 1024 * 1024;

pub fn router(handlers: Arc<Handlers>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(handlers)
}

async fn handle(State(handlers): State<Arc<Handlers>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return plain(StatusCode::PAYLOAD_TOO_LARGE, "the body is over 10 MiB");
    };
    let body = match std::str::from_utf8(&bytes) {
        Ok("") => None,
        Ok(s) => Some(s),
        Err(_) => return plain(StatusCode::BAD_REQUEST, "the body is not UTF-8 text"),
    };
    let headers: Vec<(&str, &str)> = parts
        .headers
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)))
        .collect();
    let event = api_request_with(
        parts.method.as_str(),
        parts.uri.path(),
        parts.uri.query().unwrap_or(""),
        &headers,
        body,
    );
    let out = handlers.http(event).await;
    let mut response = Response::builder()
        .status(StatusCode::from_u16(out.status_code as u16).unwrap_or(StatusCode::BAD_GATEWAY));
    for (k, v) in &out.headers {
        response = response.header(k, v);
    }
    let body = match out.body {
        Some(LambdaBody::Text(t)) => Body::from(t),
        Some(LambdaBody::Binary(b)) => Body::from(b),
        _ => Body::empty(),
    };
    response
        .body(body)
        .unwrap_or_else(|_| plain(StatusCode::BAD_GATEWAY, "malformed handler response"))
}

fn plain(status: StatusCode, message: &str) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(
            serde_json::json!({"error": "bad_request", "message": message}).to_string(),
        ))
        .unwrap_or_default()
}
