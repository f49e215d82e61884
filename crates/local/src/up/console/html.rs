//! The console's page frame and small HTML helpers.

use std::fmt::Write;

use axum::response::{Html, IntoResponse, Response};
use http::StatusCode;
use jiff::Timestamp;

/// Text made safe for HTML (element content and quoted attributes).
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A query-string value, percent-encoded.
pub fn enc(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Which page the navigation marks as current.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Orders,
    Auction,
    Bus,
}

/// A whole page: the frame, the navigation, `body`.
pub fn layout(title: &str, nav: Nav, body: &str) -> Response {
    let link = |to: Nav, href: &str, label: &str| {
        let current = if to == nav {
            " aria-current=\"page\""
        } else {
            ""
        };
        format!("<a href=\"{href}\"{current}>{label}</a>")
    };
    Html(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · Energy</title>\
         <link rel=\"stylesheet\" href=\"/console/assets/console.css\"></head>\
         <body><header><a class=\"brand\" href=\"/console\">Energy</a><nav aria-label=\"Console\">{}{}{}</nav></header>\
         <main id=\"main\">{body}</main>\
         <script src=\"/console/assets/console.js\"></script></body></html>",
        link(Nav::Orders, "/console", "Orders"),
        link(Nav::Auction, "/console/auction", "Auction curve"),
        link(Nav::Bus, "/console/bus", "Bus"),
        title = esc(title),
    ))
    .into_response()
}

/// A digest of a live part's HTML: the page carries it, each refresh answers it in a header,
/// and the script replaces the part only when it changed (so focus and reading position stay).
pub fn digest(html: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in html.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// A live part of a page: `id`, refreshed from `src`, holding `html`.
pub fn live(id: &str, src: &str, html: &str) -> String {
    format!(
        "<section id=\"{id}\" data-live=\"{}\" data-digest=\"{}\">{html}</section>",
        esc(src),
        digest(html)
    )
}

/// An HTML fragment (a live part of a page), with its digest.
pub fn fragment(body: String) -> Response {
    let digest = digest(&body);
    let mut r = (
        StatusCode::OK,
        [
            ("content-type", "text/html; charset=utf-8"),
            ("cache-control", "no-store"),
        ],
        body,
    )
        .into_response();
    if let Ok(v) = http::HeaderValue::from_str(&digest) {
        r.headers_mut().insert("x-digest", v);
    }
    r
}

/// A page that says what is missing, with the status.
pub fn not_found(nav: Nav, message: &str) -> Response {
    problem(nav, StatusCode::NOT_FOUND, "Not found", message)
}

/// A page that says what is wrong with the request.
pub fn bad_request(nav: Nav, message: &str) -> Response {
    problem(nav, StatusCode::BAD_REQUEST, "Bad request", message)
}

fn problem(nav: Nav, status: StatusCode, title: &str, message: &str) -> Response {
    let mut r = layout(
        title,
        nav,
        &format!("<h1>{title}</h1><p>{}</p>", esc(message)),
    );
    *r.status_mut() = status;
    r
}

/// A database error as a page.
pub fn failed(nav: Nav, error: impl std::fmt::Display) -> Response {
    let mut r = layout(
        "Error",
        nav,
        &format!(
            "<h1>Something failed</h1><p>{}</p>",
            esc(&error.to_string())
        ),
    );
    *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    r
}

/// A state as a badge: its name in words and a class for its colour (colour is never the only
/// signal).
pub fn badge(state: &str) -> String {
    let class = match state {
        "STORED" | "CANCELLED" => "done",
        "FAILED" | "NOTIFIED" => "bad",
        "PENDING" | "READY" | "RECEIVED" | "CANCELLING" => "busy",
        _ => "other",
    };
    format!(
        "<span class=\"badge {class}\" data-state=\"{s}\">{s}</span>",
        s = esc(state)
    )
}

/// Market time as the desk reads it (UTC, to the second).
pub fn time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%SZ").to_string()
}

/// Wall-clock epoch milliseconds, to the millisecond (UTC).
pub fn wall(ms: i64) -> String {
    Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

/// `<select>` with "any" first and `value` selected.
pub fn select(name: &str, label: &str, options: &[String], value: Option<&str>) -> String {
    let mut out = format!(
        "<label>{label} <select name=\"{name}\"><option value=\"\">any</option>",
        label = esc(label),
        name = esc(name)
    );
    for o in options {
        let selected = if value == Some(o.as_str()) {
            " selected"
        } else {
            ""
        };
        let _ = write!(out, "<option{selected}>{}</option>", esc(o));
    }
    out.push_str("</select></label>");
    out
}
