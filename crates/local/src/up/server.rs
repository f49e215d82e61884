//! The HTTP API on loopback: every request becomes an API Gateway HTTP API (payload 2.0) event
//! for submit-order, and its response goes back as API Gateway would send it.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::encodings::Body as LambdaBody;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use http::StatusCode;
use http_body_util::BodyExt;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::handlers::{Handlers, api_request_with};

/// API Gateway's payload limit.
const MAX_BODY: usize = 10 * 1024 * 1024;

/// How long a client may take to send its request headers, and then its body: a client that
/// stalls is cut off instead of holding a connection open.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

pub fn router(handlers: Arc<Handlers>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(handlers)
}

/// Serves `router` on `listener` until `stop` turns true, then lets open requests finish (for at
/// most five seconds). HTTP/1.1 with a header read timeout, which `axum::serve` does not set.
pub async fn serve(listener: TcpListener, router: axum::Router, mut stop: watch::Receiver<bool>) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(READ_TIMEOUT)
        // A client that shuts its sending side after the request still gets the answer.
        .half_close(true);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let service = TowerToHyperService::new(router.clone());
                    let connection = http.serve_connection(TokioIo::new(stream), service);
                    let connection = graceful.watch(connection);
                    tokio::spawn(async move {
                        let _ = connection.await;
                    });
                }
                // Out of file descriptors, or a connection reset before it was accepted: the
                // listener itself is fine; breathe and go on.
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = async { let _ = stop.wait_for(|s| *s).await; } => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
}

/// Reads a whole body: 413 past `MAX_BODY`, 400 if it ends early or breaks, 408 if nothing
/// arrives for `READ_TIMEOUT` (a slow client that keeps sending is not cut off).
async fn read_body(body: Body) -> Result<Vec<u8>, Response> {
    let mut body = body;
    let mut bytes = Vec::new();
    let stalled = || {
        plain(
            StatusCode::REQUEST_TIMEOUT,
            &format!(
                "nothing of the body arrived for {} s",
                READ_TIMEOUT.as_secs()
            ),
        )
    };
    loop {
        let frame = match tokio::time::timeout(READ_TIMEOUT, body.frame()).await {
            Err(_) => return Err(stalled()),
            Ok(None) => return Ok(bytes),
            Ok(Some(frame)) => frame,
        };
        let frame = frame.map_err(|e| {
            plain(
                StatusCode::BAD_REQUEST,
                &format!("the body ended before it was complete: {e}"),
            )
        })?;
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > MAX_BODY {
                return Err(plain(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "the body is over 10 MiB",
                ));
            }
            bytes.extend_from_slice(&data);
        }
    }
}

/// Every answer waits for the commit of everything done before it (the stack's own steps
/// answer before their commit, see `Db::run_early`): what a client is told, or reads, a crash
/// cannot undo.
pub async fn committed_first(
    State(db): State<Arc<crate::db::Db>>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    db.flush().await;
    response
}

/// Answers only requests meant for this machine: a Host that is a loopback name (`127.0.0.1`,
/// `localhost`, `[::1]`, any port) and, when a browser says where a request comes from, an
/// Origin on one. `energy up` listens on loopback only, but a web page the desk has open can
/// still reach it through DNS rebinding (its own name, made to resolve to 127.0.0.1): the
/// request then names that page's host, and is refused here.
pub async fn loopback_only(request: Request, next: axum::middleware::Next) -> Response {
    let headers = request.headers();
    let host = headers.get(http::header::HOST).map(|h| h.to_str().ok());
    let origin = headers.get(http::header::ORIGIN).map(|o| o.to_str().ok());
    let host_ok = match host {
        // HTTP/1.0 without a Host: no browser sends that.
        None => true,
        Some(h) => h.is_some_and(is_loopback_authority),
    };
    let origin_ok = match origin {
        None => true,
        Some(o) => o
            .and_then(|o| o.strip_prefix("http://"))
            .is_some_and(is_loopback_authority),
    };
    if host_ok && origin_ok {
        return next.run(request).await;
    }
    let what = if host_ok {
        format!(
            "a request from the web origin {:?}",
            origin.flatten().unwrap_or("?")
        )
    } else {
        format!("a request for the host {:?}", host.flatten().unwrap_or("?"))
    };
    plain(
        StatusCode::FORBIDDEN,
        &format!(
            "{what} is refused: energy up answers only requests to a loopback name (127.0.0.1, localhost or [::1]), so that no web page can reach it through DNS rebinding"
        ),
    )
}

/// `host[:port]` naming this machine: `127.0.0.1`, `localhost` (any case) or `[::1]`, with
/// nothing after the port's digits.
fn is_loopback_authority(authority: &str) -> bool {
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((host, port)) => (host, port),
            None => return false,
        },
        None => authority
            .find(':')
            .map_or((authority, ""), |i| authority.split_at(i)),
    };
    let port_ok = port.is_empty()
        || port.strip_prefix(':').is_some_and(|p| {
            !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
        });
    port_ok && (host == "127.0.0.1" || host == "::1" || host.eq_ignore_ascii_case("localhost"))
}

/// The orders API's OpenAPI document, kept next to the request schema.
pub const OPENAPI: &str = include_str!("../../../../events-schema/api/openapi.json");

async fn handle(State(handlers): State<Arc<Handlers>>, request: Request) -> Response {
    if request.uri().path() == "/openapi.json" && request.method() == http::Method::GET {
        let mut response = Response::new(Body::from(OPENAPI));
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        return response;
    }
    let (parts, body) = request.into_parts();
    let too_large = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > MAX_BODY as u64);
    if too_large {
        return plain(StatusCode::PAYLOAD_TOO_LARGE, "the body is over 10 MiB");
    }
    let bytes = match read_body(body).await {
        Ok(bytes) => bytes,
        Err(response) => return response,
    };
    let body = match std::str::from_utf8(&bytes) {
        Ok("") => None,
        Ok(s) => Some(s),
        Err(_) => return plain(StatusCode::BAD_REQUEST, "the body is not UTF-8 text"),
    };
    // A header sent twice is joined with commas, as API Gateway's payload 2.0 joins it.
    let mut joined: Vec<(String, String)> = Vec::new();
    for name in parts.headers.keys() {
        let values: Vec<&str> = parts
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        joined.push((name.as_str().to_string(), values.join(",")));
    }
    let headers: Vec<(&str, &str)> = joined
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
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
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::BAD_GATEWAY => "bad_gateway",
        StatusCode::FORBIDDEN => "not_loopback",
        _ => "bad_request",
    };
    // Built by parts: nothing here can fail, so there is no fallback to get wrong.
    let mut response = Response::new(Body::from(
        serde_json::json!({"error": code, "message": message}).to_string(),
    ));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::is_loopback_authority;

    #[test]
    fn only_loopback_names_with_a_port_at_most_are_this_machine() {
        for ok in [
            "127.0.0.1",
            "127.0.0.1:8080",
            "localhost",
            "LocalHost:1",
            "[::1]",
            "[::1]:65535",
        ] {
            assert!(is_loopback_authority(ok), "{ok}");
        }
        for bad in [
            "",
            "evil.example",
            "127.0.0.1.evil.example",
            "localhost.evil.example",
            "127.0.0.1:80:80",
            "127.0.0.1:",
            "127.0.0.1:x",
            "127.0.0.1:123456",
            "[::1",
            "[::1]x",
            "[::2]",
            "0.0.0.0",
            "127.0.0.1@evil.example",
        ] {
            assert!(!is_loopback_authority(bad), "{bad}");
        }
    }
}
