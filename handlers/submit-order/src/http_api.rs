//! Routing and answers in API Gateway HTTP API (payload 2.0) terms.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use base64::Engine;
use http::{HeaderValue, Method};
use serde::Serialize;
use serde_json::json;

/// Bodies larger than this are refused before parsing (API Gateway's own limit is 10 MB).
pub const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

/// The routes this function serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    PostOrders,
    GetOrder(String),
    CancelOrder(String),
    AmendOrder(String),
    MethodNotAllowed { allowed: &'static str },
    NotFound(String),
}

impl Request {
    /// Routes by method and path. The path comes from `rawPath` (stage prefix stripped when the
    /// route key tells where it starts) so the same code serves API Gateway and `energy up`.
    pub fn from_event(event: &ApiGatewayV2httpRequest) -> Request {
        let method = &event.request_context.http.method;
        if let Some(id) = event.path_parameters.get("record_id") {
            return Request::on_order(method, id.clone());
        }
        let path = event
            .raw_path
            .clone()
            .or_else(|| event.request_context.http.path.clone())
            .unwrap_or_default();
        let stage = event
            .request_context
            .stage
            .as_deref()
            .filter(|s| *s != "$default");
        let trimmed = match stage {
            Some(stage) => path.strip_prefix(&format!("/{stage}")).unwrap_or(&path),
            None => &path,
        };
        // One slash between segments, none at the end: `/orders/ID/` and `//orders` are no
        // route, as in API Gateway.
        let segments: Vec<&str> = trimmed
            .strip_prefix('/')
            .unwrap_or(trimmed)
            .split('/')
            .collect();
        match segments.as_slice() {
            ["orders"] if method == Method::POST => Request::PostOrders,
            ["orders"] => Request::MethodNotAllowed { allowed: "POST" },
            ["orders", id] => Request::on_order(method, percent_decode(id)),
            _ => Request::NotFound(format!("{method} {path}")),
        }
    }
}

/// Minimal %XX decoding for a path segment (record ids may hold `:`).
impl Request {
    /// `METHOD /orders/{record_id}`.
    fn on_order(method: &Method, id: String) -> Request {
        match *method {
            Method::GET => Request::GetOrder(id),
            Method::DELETE => Request::CancelOrder(id),
            Method::PUT => Request::AmendOrder(id),
            _ => Request::MethodNotAllowed {
                allowed: "GET, PUT, DELETE",
            },
        }
    }
}

pub fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let pair = (bytes[i] == b'%')
            .then(|| Some((hex(*bytes.get(i + 1)?)?, hex(*bytes.get(i + 2)?)?)))
            .flatten();
        match pair {
            Some((hi, lo)) => {
                out.push(hi * 16 + lo);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The body of a request that must be JSON: 415 unless its Content-Type is
/// `application/json` (parameters such as `charset=utf-8` allowed). Browsers send a cross-site
/// form or `text/plain` POST without asking; they never send `application/json` without a CORS
/// preflight, which this API does not answer.
pub fn json_body_text(
    event: &ApiGatewayV2httpRequest,
) -> Result<String, Box<ApiGatewayV2httpResponse>> {
    let content_type = event
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    // `application/json`, with no parameter but an UTF-8 charset: the body is read as UTF-8.
    let is_json = content_type.is_some_and(|v| {
        let mut parts = v.split(';');
        let media = parts.next().unwrap_or_default().trim();
        media.eq_ignore_ascii_case("application/json")
            && parts.all(|p| {
                let (name, value) = p.split_once('=').unwrap_or((p, ""));
                name.trim().eq_ignore_ascii_case("charset")
                    && matches!(
                        value.trim().trim_matches('"').to_ascii_lowercase().as_str(),
                        "utf-8" | "utf8"
                    )
            })
    });
    if !is_json {
        let got = match content_type {
            Some(v) => format!("Content-Type {v:?}"),
            None => "no Content-Type".to_string(),
        };
        return Err(Box::new(error(
            415,
            "unsupported_media_type",
            format!("POST /orders takes Content-Type: application/json; got {got}"),
        )));
    }
    body_text(event)
}

/// The request body as text, or the answer that refuses it.
pub fn body_text(event: &ApiGatewayV2httpRequest) -> Result<String, Box<ApiGatewayV2httpResponse>> {
    read_body(event).map_err(|(status, code, message)| Box::new(error(status, code, message)))
}

fn read_body(event: &ApiGatewayV2httpRequest) -> Result<String, (i64, &'static str, String)> {
    let too_large = || {
        (
            413,
            "body_too_large",
            format!("the body is over {MAX_BODY_BYTES} bytes"),
        )
    };
    let raw = event.body.as_deref().unwrap_or("");
    if raw.len() > MAX_BODY_BYTES * 4 / 3 + 4 {
        return Err(too_large());
    }
    let text = if event.is_base64_encoded {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(raw)
            .map_err(|e| {
                (
                    400,
                    "invalid_body",
                    format!("$: the body is marked base64 but is not: {e}"),
                )
            })?;
        String::from_utf8(bytes).map_err(|_| {
            (
                400,
                "invalid_body",
                "$: the body is not UTF-8 text".to_string(),
            )
        })?
    } else {
        raw.to_string()
    };
    if text.len() > MAX_BODY_BYTES {
        return Err(too_large());
    }
    Ok(text)
}

/// A JSON answer.
pub fn json<T: Serialize>(status: i64, body: &T) -> ApiGatewayV2httpResponse {
    let text = serde_json::to_string(body)
        .unwrap_or_else(|e| json!({"error": "internal", "message": e.to_string()}).to_string());
    let mut resp = ApiGatewayV2httpResponse::default();
    resp.status_code = status;
    resp.headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.body = Some(Body::Text(text));
    resp
}

/// An error answer: `{"error": code, "message": ...}`.
pub fn error(status: i64, code: &str, message: String) -> ApiGatewayV2httpResponse {
    json(status, &json!({"error": code, "message": message}))
}

pub fn method_not_allowed(allowed: &'static str) -> ApiGatewayV2httpResponse {
    let mut resp = error(
        405,
        "method_not_allowed",
        format!("this path takes {allowed}"),
    );
    resp.headers
        .insert(http::header::ALLOW, HeaderValue::from_static(allowed));
    resp
}

/// The body of an answer as JSON (for tests and the local server).
pub fn response_body(resp: &ApiGatewayV2httpResponse) -> serde_json::Value {
    match &resp.body {
        Some(Body::Text(t)) => serde_json::from_str(t).unwrap_or(serde_json::Value::Null),
        Some(Body::Binary(b)) => serde_json::from_slice(b).unwrap_or(serde_json::Value::Null),
        _ => serde_json::Value::Null,
    }
}
