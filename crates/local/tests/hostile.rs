//! Hostile input against a real `energy up`: malformed and oversized bodies, wrong media types
//! and methods, odd ids and URLs, slow and cut-short connections, floods and races. After every
//! case the server still answers, and nothing that was refused is stored or announced.
//!
//! Most tests run on a market clock that starts at 09:00 Brussels time (08:00Z) on 2026-11-27
//! at 1×: the SDAC gate for delivery day 2026-11-28 closes at 11:00Z, three real hours away.

#[path = "common/up.rs"]
mod up;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const START: &str = "2026-11-27T08:00:00Z";
const DAY: &str = "2026-11-28";
const MTU: &str = "2026-11-28T06:00:00Z";
const PRICE: &str = "$[0].periods[0].steps[0].price";
const QUANTITY: &str = "$[0].periods[0].steps[0].quantity";
const MTU_START: &str = "$[0].periods[0].mtu_start";
const MIB: usize = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Orders as JSON text, so that a test can write what serde_json would never produce.
// ---------------------------------------------------------------------------------------------

/// The raw JSON of `key`: the last edit for it, `None` if that edit is "" (leave the key out),
/// else `default`.
fn field(edits: &[(&str, &str)], key: &str, default: &str) -> Option<String> {
    match edits.iter().rev().find(|(k, _)| *k == key) {
        Some((_, "")) => None,
        Some((_, v)) => Some((*v).to_string()),
        None => Some(default.to_string()),
    }
}

fn object(fields: &[(&str, Option<String>)]) -> String {
    let inner: Vec<String> = fields
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("\"{k}\": {v}")))
        .collect();
    format!("{{{}}}", inner.join(", "))
}

/// One step `{"price": "250.00", "quantity": "10.0"}`, edited by `price` / `quantity`.
fn step(edits: &[(&str, &str)]) -> String {
    object(&[
        ("price", field(edits, "price", "\"250.00\"")),
        ("quantity", field(edits, "quantity", "\"10.0\"")),
    ])
}

/// One period at 06:00Z, edited by `mtu_start` / `steps` (and the step's keys).
fn period(edits: &[(&str, &str)]) -> String {
    object(&[
        (
            "mtu_start",
            field(edits, "mtu_start", &format!("\"{MTU}\"")),
        ),
        (
            "steps",
            field(edits, "steps", &format!("[{}]", step(edits))),
        ),
    ])
}

/// A valid SDAC buy for 2026-11-28 with record id `@ID` (the runner fills it in); each edit
/// replaces the raw JSON of one key anywhere in it (`record_id` ... `periods`, `mtu_start`,
/// `steps`, `price`, `quantity`), "" leaves the key out. A value may smuggle in more keys:
/// `("side", r#""BUY", "side": "SELL""#)`.
fn order(edits: &[(&str, &str)]) -> String {
    object(&[
        ("record_id", field(edits, "record_id", "\"@ID\"")),
        ("market", field(edits, "market", "\"SDAC\"")),
        (
            "delivery_date",
            field(edits, "delivery_date", &format!("\"{DAY}\"")),
        ),
        ("zone", field(edits, "zone", "\"DE-LU\"")),
        ("portfolio", field(edits, "portfolio", "\"DESK-H\"")),
        ("side", field(edits, "side", "\"BUY\"")),
        (
            "periods",
            field(edits, "periods", &format!("[{}]", period(edits))),
        ),
    ])
}

/// A batch of one edited order.
fn one(edits: &[(&str, &str)]) -> String {
    format!("[{}]", order(edits))
}

fn batch(orders: &[String]) -> String {
    format!("[{}]", orders.join(", "))
}

/// A valid order with this id (and these edits).
fn valid(id: &str, edits: &[(&str, &str)]) -> String {
    order(edits).replace("@ID", id)
}

// ---------------------------------------------------------------------------------------------
// A server per test, answers, raw connections.
// ---------------------------------------------------------------------------------------------

/// A real `energy up` on its own data dir, stopped and cleaned up on drop.
struct Server {
    up: Option<up::Up>,
    http: reqwest::Client,
    dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.up.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("a reqwest client")
}

/// What came back over reqwest; a transport error is status 0 with the error as text.
struct Reply {
    status: u16,
    allow: Option<String>,
    text: String,
    json: Value,
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {} {}", self.status, clip(&self.text))
    }
}

fn clip(s: &str) -> String {
    const MAX: usize = 1500;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &s[..end], s.len())
}

async fn send(request: reqwest::RequestBuilder) -> Reply {
    match request.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            let allow = r
                .headers()
                .get("allow")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let text = r.text().await.unwrap_or_default();
            let json = serde_json::from_str(&text).unwrap_or(Value::Null);
            Reply {
                status,
                allow,
                text,
                json,
            }
        }
        Err(e) => Reply {
            status: 0,
            allow: None,
            text: format!("transport error: {e:?}"),
            json: Value::Null,
        },
    }
}

impl Server {
    fn start(name: &str) -> Server {
        Server::start_with(name, &["--start", START, "--speed", "1"])
    }

    fn start_with(name: &str, args: &[&str]) -> Server {
        let dir = up::data_dir(&format!("hostile-{name}"));
        let up = up::start(&dir, args);
        Server {
            up: Some(up),
            http: client(),
            dir,
        }
    }

    fn up(&self) -> &up::Up {
        self.up.as_ref().expect("running")
    }

    fn url(&self, path: &str) -> String {
        self.up().url(path)
    }

    /// `127.0.0.1:PORT`, for raw connections.
    fn addr(&self) -> String {
        self.up().base.trim_start_matches("http://").to_string()
    }

    async fn post(&self, content_type: Option<&str>, body: impl Into<String>) -> Reply {
        let mut request = self.http.post(self.url("/orders")).body(body.into());
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        send(request).await
    }

    async fn post_json(&self, body: impl Into<String>) -> Reply {
        self.post(Some("application/json"), body).await
    }

    async fn get(&self, path: &str) -> Reply {
        send(self.http.get(self.url(path))).await
    }

    /// Posts a valid batch and insists on 202 with every order accepted.
    async fn store(&self, body: &str) {
        let r = self.post_json(body.to_string()).await;
        assert_eq!(r.status, 202, "a valid batch was refused: {r}");
        let orders = r.json["orders"].as_array().cloned().unwrap_or_default();
        assert!(
            !orders.is_empty() && orders.iter().all(|o| o["status"] == "accepted"),
            "not every order accepted: {r}"
        );
    }

    /// The server still answers: a fresh connection, GET /orders/nope → 404.
    async fn alive(&self) -> Result<(), String> {
        let r = send(client().get(self.url("/orders/nope"))).await;
        if r.status == 404 {
            Ok(())
        } else {
            Err(format!(
                "the server no longer answers GET /orders/nope with 404: {r}"
            ))
        }
    }

    async fn assert_alive(&self) {
        if let Err(why) = self.alive().await {
            panic!("{why}");
        }
    }

    /// The record ids of every archived OrderSubmitted, in archive order.
    fn submitted(&self) -> Vec<String> {
        up::archive(&self.dir)
            .iter()
            .filter(|e| e["detail-type"] == "OrderSubmitted")
            .filter_map(|e| e["detail"]["record_id"].as_str().map(str::to_string))
            .collect()
    }

    /// Each id GETs 404 and has no OrderSubmitted in the archive.
    async fn assert_not_stored(&self, ids: &[&str]) {
        for id in ids {
            let r = self.get(&format!("/orders/{id}")).await;
            assert_eq!(r.status, 404, "{id} was stored: GET answered {r}");
        }
        let submitted = self.submitted();
        for id in ids {
            assert!(
                !submitted.iter().any(|s| s == id),
                "an OrderSubmitted for {id} is in the archive: {submitted:?}"
            );
        }
    }

    /// Each id GETs 200 and has exactly one OrderSubmitted in the archive.
    async fn assert_stored_once(&self, ids: &[&str]) {
        for id in ids {
            let r = self.get(&format!("/orders/{id}")).await;
            assert_eq!(r.status, 200, "{id} is not stored: GET answered {r}");
        }
        let submitted = self.submitted();
        for id in ids {
            let n = submitted.iter().filter(|s| s == id).count();
            assert_eq!(n, 1, "{n} OrderSubmitted for {id}: {submitted:?}");
        }
    }
}

/// What a raw connection got: every byte until the server closed, a full response arrived, an
/// error, or the wait ran out.
struct Raw {
    bytes: Vec<u8>,
    /// The server closed the connection (EOF or reset).
    closed: bool,
    error: Option<String>,
    elapsed: Duration,
}

impl Raw {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    fn head_end(&self) -> Option<usize> {
        self.bytes.windows(4).position(|w| w == b"\r\n\r\n")
    }

    /// The status of the response, if one started.
    fn status(&self) -> Option<u16> {
        let text = self.text();
        let line = text.lines().next()?;
        let mut words = line.split_whitespace();
        words.next().filter(|w| w.starts_with("HTTP/"))?;
        words.next()?.parse().ok()
    }

    fn header(&self, name: &str) -> Option<String> {
        let end = self.head_end()?;
        let head = String::from_utf8_lossy(&self.bytes[..end]).into_owned();
        head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }

    fn json(&self) -> Value {
        self.head_end()
            .and_then(|end| serde_json::from_slice(&self.bytes[end + 4..]).ok())
            .unwrap_or(Value::Null)
    }

    /// A whole response with a Content-Length is in.
    fn complete(&self) -> bool {
        let Some(end) = self.head_end() else {
            return false;
        };
        let Some(length) = self
            .header("content-length")
            .and_then(|v| v.parse::<usize>().ok())
        else {
            return false;
        };
        self.bytes.len() >= end + 4 + length
    }
}

impl std::fmt::Display for Raw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "after {:?}: closed={} error={:?} got {:?}",
            self.elapsed,
            self.closed,
            self.error,
            clip(&self.text())
        )
    }
}

/// Sends `request` on a new connection (writing in the background, so a server that answers
/// before reading everything is heard), then `half_close` shuts the write side, else it stays
/// open. Reads until the server closes, a full response is in, an error, or `wait` is over.
async fn raw(addr: &str, request: Vec<u8>, half_close: bool, wait: Duration) -> Raw {
    let started = Instant::now();
    let stream = TcpStream::connect(addr)
        .await
        .expect("connect to energy up");
    let (mut reader, mut writer) = stream.into_split();
    let write = tokio::spawn(async move {
        let _ = writer.write_all(&request).await;
        let _ = writer.flush().await;
        if half_close {
            let _ = writer.shutdown().await;
        }
        // Returned, so the write side stays open until the reading is over.
        writer
    });
    let deadline = tokio::time::Instant::from_std(started + wait);
    let mut out = Raw {
        bytes: Vec::new(),
        closed: false,
        error: None,
        elapsed: Duration::ZERO,
    };
    let mut buf = vec![0u8; 64 * 1024];
    while !out.complete() {
        match tokio::time::timeout_at(deadline, reader.read(&mut buf)).await {
            Err(_) => break,
            Ok(Ok(0)) => {
                out.closed = true;
                break;
            }
            Ok(Ok(n)) => out.bytes.extend_from_slice(&buf[..n]),
            Ok(Err(e)) => {
                out.closed = true;
                out.error = Some(e.to_string());
                break;
            }
        }
    }
    out.elapsed = started.elapsed();
    write.abort();
    drop(write.await);
    out
}

/// `METHOD target HTTP/1.1` with Host and `Connection: close`, then `headers`, then `body`.
fn request(method: &str, target: &str, headers: &[String], body: &[u8]) -> Vec<u8> {
    request_to("127.0.0.1", method, target, headers, body)
}

fn json_post(body: &[u8]) -> Vec<u8> {
    request(
        "POST",
        "/orders",
        &[
            "Content-Type: application/json".to_string(),
            format!("Content-Length: {}", body.len()),
        ],
        body,
    )
}

// ---------------------------------------------------------------------------------------------
// 400 tables: one server per table, every case checked, every failure listed.
// ---------------------------------------------------------------------------------------------

/// A body that must be refused with 400 and an error with this `rule` at this `path` (a path
/// ending in `*` matches any path it starts). `@ID` in the body becomes a fresh record id.
struct Bad {
    name: String,
    body: String,
    path: &'static str,
    rule: &'static str,
}

fn bad(
    name: impl Into<String>,
    body: impl Into<String>,
    path: &'static str,
    rule: &'static str,
) -> Bad {
    Bad {
        name: name.into(),
        body: body.into(),
        path,
        rule,
    }
}

fn path_matches(want: &str, got: &str) -> bool {
    match want.strip_suffix('*') {
        Some(prefix) => got.starts_with(prefix),
        None => got == want,
    }
}

/// The 400 contract: `{"error": "invalid_orders", "message": "N problem(s)...; nothing was
/// stored", "errors": [{"path", "rule", "message": "<path>: ..."}]}` naming `rule` at `path`.
fn check_invalid(r: &Reply, path: &str, rule: &str) -> Result<(), String> {
    if r.status != 400 {
        return Err(format!("status {} instead of 400", r.status));
    }
    if r.json["error"] != "invalid_orders" {
        return Err("\"error\" is not \"invalid_orders\"".to_string());
    }
    let message = r.json["message"].as_str().unwrap_or("");
    let count = message
        .split(' ')
        .next()
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0);
    if count == 0 || !message.contains(" problem") || !message.contains("nothing was stored") {
        return Err(format!(
            "\"message\" {message:?} is not \"N problem(s)...; nothing was stored\""
        ));
    }
    let errors = r.json["errors"].as_array().cloned().unwrap_or_default();
    for e in &errors {
        let p = e["path"].as_str().unwrap_or("");
        let m = e["message"].as_str().unwrap_or("");
        if p.is_empty() || e["rule"].as_str().is_none() || !m.starts_with(&format!("{p}: ")) {
            return Err(format!(
                "an error without path, rule or a message starting with its path: {e}"
            ));
        }
    }
    let found = errors
        .iter()
        .any(|e| e["rule"] == rule && e["path"].as_str().is_some_and(|p| path_matches(path, p)));
    if found {
        Ok(())
    } else {
        let got: Vec<String> = errors
            .iter()
            .map(|e| format!("{} {}", e["rule"], e["path"]))
            .collect();
        Err(format!("no error {rule:?} at {path:?} (got {got:?})"))
    }
}

/// Starts a server, stores two valid control orders (limit prices, the largest volume, a
/// 64-character id), then posts every case; asserts each is refused as it says, that the
/// server still answers after each, and that only the control orders were stored.
async fn refuses_each(name: &str, cases: Vec<Bad>) {
    let s = Server::start(name);
    let long_id = format!("{name}-{}", "x".repeat(64 - name.len() - 1));
    let control = [format!("{name}-ok"), long_id];
    s.store(&batch(&[
        valid(
            &control[0],
            &[("price", "\"4000.00\""), ("quantity", "\"2999.9\"")],
        ),
        valid(
            &control[1],
            &[
                ("side", "\"SELL\""),
                ("price", "-500"),
                ("quantity", "12.5"),
            ],
        ),
    ]))
    .await;
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let id = format!("{name}-{i}");
        let r = s.post_json(case.body.replace("@ID", &id)).await;
        if let Err(why) = check_invalid(&r, case.path, case.rule) {
            failures.push(format!("[{}] {why}\n      answer: {r}", case.name));
        }
        if let Err(why) = s.alive().await {
            failures.push(format!("[{}] afterwards {why}", case.name));
            break;
        }
        let g = s.get(&format!("/orders/{id}")).await;
        if g.status != 404 {
            failures.push(format!("[{}] {id} was stored: GET answered {g}", case.name));
        }
    }
    let submitted = s.submitted();
    let strays: Vec<&String> = submitted
        .iter()
        .filter(|id| !control.contains(id))
        .collect();
    if !strays.is_empty() {
        failures.push(format!(
            "OrderSubmitted archived for refused orders: {strays:?}"
        ));
    }
    for id in &control {
        if !submitted.contains(id) {
            failures.push(format!(
                "the control order {id} has no OrderSubmitted: {submitted:?}"
            ));
        }
    }
    all_well(&failures, cases.len());
}

#[tokio::test]
async fn bodies_that_are_not_json_are_400_rule_json_and_store_nothing() {
    let good = one(&[]);
    refuses_each(
        "json",
        vec![
            bad("not JSON at all", "this is not json", "$", "json"),
            bad("an empty body", "", "$", "json"),
            bad("a NaN literal", one(&[("price", "NaN")]), "$*", "json"),
            bad(
                "an Infinity literal",
                one(&[("quantity", "Infinity")]),
                "$*",
                "json",
            ),
            bad(
                "a -Infinity literal",
                one(&[("price", "-Infinity")]),
                "$*",
                "json",
            ),
            bad("100k unclosed brackets", "[".repeat(100_000), "$*", "json"),
            bad(
                "100k-deep nested arrays",
                format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
                "$*",
                "json",
            ),
            bad(
                "100k-deep nested objects",
                format!("{}1{}", "{\"a\":".repeat(100_000), "}".repeat(100_000)),
                "$*",
                "json",
            ),
            bad("trailing garbage", format!("{good} x"), "$", "json"),
            bad(
                "two arrays back to back",
                format!("{good}{good}"),
                "$",
                "json",
            ),
            bad(
                "a body cut mid-object",
                good[..40].to_string(),
                "$*",
                "json",
            ),
            bad("single quotes", good.replace('"', "'"), "$*", "json"),
            bad("a comment", format!("// orders\n{good}"), "$*", "json"),
            bad(
                "a trailing comma",
                format!("[{},]", order(&[])),
                "$*",
                "json",
            ),
            bad(
                "a lone surrogate escape",
                one(&[("portfolio", r#""\ud800""#)]),
                "$*",
                "json",
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_key_twice_in_an_object_is_400_duplicate_key_at_that_key() {
    let p = period(&[]);
    let mtu_twice = format!(r#""{MTU}", "mtu_start": "2026-11-28T06:15:00Z""#);
    let periods_twice = format!(r#"[{p}], "periods": [{p}]"#);
    refuses_each(
        "dupkey",
        vec![
            bad(
                "side BUY then SELL",
                one(&[("side", r#""BUY", "side": "SELL""#)]),
                "$[0].side",
                "duplicate_key",
            ),
            bad(
                "record_id twice with the same value",
                one(&[("record_id", r#""@ID", "record_id": "@ID""#)]),
                "$[0].record_id",
                "duplicate_key",
            ),
            bad(
                "periods twice",
                one(&[("periods", &periods_twice)]),
                "$[0].periods",
                "duplicate_key",
            ),
            bad(
                "mtu_start twice",
                one(&[("mtu_start", &mtu_twice)]),
                MTU_START,
                "duplicate_key",
            ),
            bad(
                "price twice in a step",
                one(&[("price", r#""250.00", "price": "1.00""#)]),
                PRICE,
                "duplicate_key",
            ),
            bad(
                "zone twice in the second order",
                batch(&[
                    order(&[("record_id", "\"@ID-a\"")]),
                    order(&[
                        ("record_id", "\"@ID-b\""),
                        ("zone", r#""DE-LU", "zone": "FR""#),
                    ]),
                ]),
                "$[1].zone",
                "duplicate_key",
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn wrong_shapes_are_400_type_required_unknown_field_or_batch_empty() {
    let mtu_note = format!(r#""{MTU}", "note": "x""#);
    refuses_each(
        "shape",
        vec![
            bad("an object instead of an array", order(&[]), "$", "type"),
            bad("a string instead of an array", r#""orders""#, "$", "type"),
            bad("null", "null", "$", "type"),
            bad("a number as an order", "[42]", "$[0]", "type"),
            bad(
                "record_id a number",
                one(&[("record_id", "42")]),
                "$[0].record_id",
                "type",
            ),
            bad(
                "periods a string",
                one(&[("periods", r#""all day""#)]),
                "$[0].periods",
                "type",
            ),
            bad(
                "steps an object",
                one(&[("steps", r#"{"price": "250.00", "quantity": "10.0"}"#)]),
                "$[0].periods[0].steps",
                "type",
            ),
            bad(
                "a step an array",
                one(&[("steps", r#"[["250.00", "10.0"]]"#)]),
                "$[0].periods[0].steps[0]",
                "type",
            ),
            bad(
                "mtu_start a number",
                one(&[("mtu_start", "1795845600")]),
                MTU_START,
                "type",
            ),
            bad(
                "side missing",
                one(&[("side", "")]),
                "$[0].side",
                "required",
            ),
            bad(
                "record_id missing",
                one(&[("record_id", "")]),
                "$[0].record_id",
                "required",
            ),
            bad(
                "periods missing",
                one(&[("periods", "")]),
                "$[0].periods",
                "required",
            ),
            bad(
                "mtu_start missing",
                one(&[("mtu_start", "")]),
                MTU_START,
                "required",
            ),
            bad("price missing", one(&[("price", "")]), PRICE, "required"),
            bad(
                "an unknown field on an order",
                one(&[("portfolio", r#""DESK-H", "colour": "red""#)]),
                "$[0].colour",
                "unknown_field",
            ),
            bad(
                "a __proto__ field",
                one(&[("portfolio", r#""DESK-H", "__proto__": {"admin": true}"#)]),
                "$[0].__proto__",
                "unknown_field",
            ),
            bad(
                "an unknown field on a period",
                one(&[("mtu_start", &mtu_note)]),
                "$[0].periods[0].note",
                "unknown_field",
            ),
            bad(
                "an unknown field on a step",
                one(&[("quantity", r#""10.0", "currency": "USD""#)]),
                "$[0].periods[0].steps[0].currency",
                "unknown_field",
            ),
            bad("an empty batch", "[]", "$", "batch_empty"),
            bad(
                "an empty batch in whitespace",
                " \n[ ]\n ",
                "$",
                "batch_empty",
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn hostile_record_ids_are_400_rule_record_id() {
    let id_cases: Vec<(&str, String)> = vec![
        ("a slash", r#""a/b""#.to_string()),
        ("a path traversal", r#""../../etc/passwd""#.to_string()),
        ("a space", r#""desk a""#.to_string()),
        ("a NUL", r#""a\u0000b""#.to_string()),
        ("a newline", r#""a\nb""#.to_string()),
        ("a raw U+202E bidi override", "\"a\u{202E}b\"".to_string()),
        (
            "an escaped U+202E bidi override",
            r#""a\u202Eb""#.to_string(),
        ),
        ("a zero-width space", r#""a\u200Bb""#.to_string()),
        ("a Cyrillic look-alike", "\"d\u{0435}sk-a\"".to_string()),
        ("a percent escape", r#""a%2Fb""#.to_string()),
        ("empty", r#""""#.to_string()),
        ("65 characters", format!("\"{}\"", "a".repeat(65))),
    ];
    refuses_each(
        "rid",
        id_cases
            .iter()
            .map(|(name, id)| {
                bad(
                    *name,
                    one(&[("record_id", id)]),
                    "$[0].record_id",
                    "record_id",
                )
            })
            .collect(),
    )
    .await;
}

#[tokio::test]
async fn unknown_market_zone_side_bad_dates_and_a_past_day_are_400() {
    refuses_each(
        "vocab",
        vec![
            bad(
                "market XBID",
                one(&[("market", r#""XBID""#)]),
                "$[0].market",
                "market",
            ),
            bad(
                "market empty",
                one(&[("market", r#""""#)]),
                "$[0].market",
                "market",
            ),
            bad(
                "zone MARS",
                one(&[("zone", r#""MARS""#)]),
                "$[0].zone",
                "zone",
            ),
            bad(
                "side HOLD",
                one(&[("side", r#""HOLD""#)]),
                "$[0].side",
                "side",
            ),
            bad(
                "month 13",
                one(&[("delivery_date", r#""2026-13-45""#)]),
                "$[0].delivery_date",
                "date",
            ),
            bad(
                "a day-first date",
                one(&[("delivery_date", r#""28/11/2026""#)]),
                "$[0].delivery_date",
                "date",
            ),
            bad(
                "a date-time for a date",
                one(&[("delivery_date", r#""2026-11-28T00:00:00Z""#)]),
                "$[0].delivery_date",
                "date",
            ),
            bad(
                "a past delivery day",
                one(&[
                    ("delivery_date", r#""2026-11-26""#),
                    ("mtu_start", r#""2026-11-26T06:00:00Z""#),
                ]),
                "$[0].delivery_date",
                "gate_closed",
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn mtu_starts_off_format_off_grid_or_outside_delivery_are_400() {
    let cases = [
        ("a +01:00 offset", "2026-11-28T07:00:00+01:00", "timestamp"),
        ("a +00:00 offset", "2026-11-28T06:00:00+00:00", "timestamp"),
        ("lower-case t and z", "2026-11-28t06:00:00z", "timestamp"),
        ("a space for T", "2026-11-28 06:00:00Z", "timestamp"),
        ("no seconds", "2026-11-28T06:00Z", "timestamp"),
        ("no zone", "2026-11-28T06:00:00", "timestamp"),
        ("a word", "tomorrow", "timestamp"),
        ("09:07", "2026-11-28T09:07:00Z", "mtu_grid"),
        ("09:15:30", "2026-11-28T09:15:30Z", "mtu_grid"),
        ("09:15:00.5", "2026-11-28T09:15:00.5Z", "mtu_grid"),
        (
            "the next day",
            "2026-11-29T06:00:00Z",
            "mtu_outside_delivery",
        ),
        (
            "before the Brussels day",
            "2026-11-27T22:45:00Z",
            "mtu_outside_delivery",
        ),
    ];
    refuses_each(
        "mtu",
        cases
            .iter()
            .map(|(name, mtu, rule)| {
                bad(
                    *name,
                    one(&[("mtu_start", &format!("\"{mtu}\""))]),
                    MTU_START,
                    rule,
                )
            })
            .collect(),
    )
    .await;
}

#[tokio::test]
async fn prices_off_the_tick_or_over_the_limit_are_400() {
    let cases = [
        ("4000.01", "\"4000.01\"", "price_limit"),
        ("-500.01", "\"-500.01\"", "price_limit"),
        ("the number 1000000", "1000000", "price_limit"),
        ("10.001", "\"10.001\"", "price_tick"),
        ("100.000", "\"100.000\"", "price_tick"),
        ("the number 0.001", "0.001", "price_tick"),
        ("the number 1e-400", "1e-400", "price_tick"),
        (
            "the number 100.0000000000000001",
            "100.0000000000000001",
            "price_tick",
        ),
    ];
    refuses_each(
        "price",
        cases
            .iter()
            .map(|(name, price, rule)| bad(*name, one(&[("price", price)]), PRICE, rule))
            .collect(),
    )
    .await;
}

#[tokio::test]
async fn quantities_off_the_lot_not_positive_or_over_the_volume_limit_are_400() {
    let cases = [
        ("1.05", "\"1.05\"", QUANTITY, "quantity_lot"),
        ("10.00", "\"10.00\"", QUANTITY, "quantity_lot"),
        ("the number 0.15", "0.15", QUANTITY, "quantity_lot"),
        ("0", "\"0\"", QUANTITY, "quantity_positive"),
        ("0.0", "\"0.0\"", QUANTITY, "quantity_positive"),
        ("-1.0", "\"-1.0\"", QUANTITY, "quantity_positive"),
        ("the number 0", "0", QUANTITY, "quantity_positive"),
        ("the number -5", "-5", QUANTITY, "quantity_positive"),
        (
            "100000000000000000",
            "\"100000000000000000\"",
            "$[0].periods[0]*",
            "volume_limit",
        ),
        (
            "700000000000000",
            "\"700000000000000\"",
            "$[0].periods[0]*",
            "volume_limit",
        ),
        ("3000.0", "\"3000.0\"", "$[0].periods[0]*", "volume_limit"),
    ];
    let mut table: Vec<Bad> = cases
        .iter()
        .map(|(name, q, path, rule)| bad(*name, one(&[("quantity", q)]), path, rule))
        .collect();
    let two_steps = format!(
        "[{}, {}]",
        step(&[("price", "\"250.00\""), ("quantity", "\"1500.0\"")]),
        step(&[("price", "\"240.00\""), ("quantity", "\"1500.0\"")]),
    );
    table.push(bad(
        "two steps of 1500.0 in one MTU",
        one(&[("steps", &two_steps)]),
        "$[0].periods[0]*",
        "volume_limit",
    ));
    refuses_each("qty", table).await;
}

#[tokio::test]
async fn oddly_written_numbers_are_400_not_a_number_or_beyond_the_limits() {
    let strings = [
        " 100.00",
        "+100.00",
        "100.",
        ".5",
        "1e2",
        "NaN",
        "Infinity",
        "",
        "1,5",
        "0x10",
        "\u{0661}\u{0660}\u{0660}",
    ];
    let mut table = Vec::new();
    for s in strings {
        let raw = serde_json::to_string(s).unwrap();
        table.push(bad(
            format!("price {raw}"),
            one(&[("price", &raw)]),
            PRICE,
            "not_a_number",
        ));
    }
    for s in [" 1.0", "+1.0", "1.", ".5", "1e1", "NaN", "Infinity"] {
        let raw = serde_json::to_string(s).unwrap();
        table.push(bad(
            format!("quantity {raw}"),
            one(&[("quantity", &raw)]),
            QUANTITY,
            "not_a_number",
        ));
    }
    table.push(bad(
        "price 1e309",
        one(&[("price", "1e309")]),
        PRICE,
        "price_limit",
    ));
    table.push(bad(
        "price -1e309",
        one(&[("price", "-1e309")]),
        PRICE,
        "price_limit",
    ));
    table.push(bad(
        "quantity 1e309",
        one(&[("quantity", "1e309")]),
        QUANTITY,
        "volume_limit",
    ));
    refuses_each("num", table).await;
}

#[tokio::test]
async fn bad_curves_and_repeated_ids_are_400_monotonic_duplicate_mtu_too_many_steps_or_duplicate_record_id()
 {
    let steps = |prices: &[&str]| {
        let list: Vec<String> = prices
            .iter()
            .map(|p| step(&[("price", &format!("\"{p}\"")), ("quantity", "\"1.0\"")]))
            .collect();
        format!("[{}]", list.join(", "))
    };
    let at = |mtu: &str| period(&[("mtu_start", &format!("\"{mtu}\""))]);
    let many: Vec<String> = (0..201)
        .map(|k| {
            step(&[
                ("price", &format!("\"{}.00\"", 3000 - k)),
                ("quantity", "\"0.1\""),
            ])
        })
        .collect();
    let many = format!("[{}]", many.join(", "));
    refuses_each(
        "curve",
        vec![
            bad(
                "a buy curve that ascends",
                one(&[("steps", &steps(&["250.00", "260.00"]))]),
                "$[0].periods[0].steps[1].price",
                "monotonic",
            ),
            bad(
                "a sell curve that descends",
                one(&[
                    ("side", "\"SELL\""),
                    ("steps", &steps(&["260.00", "250.00"])),
                ]),
                "$[0].periods[0].steps[1].price",
                "monotonic",
            ),
            bad(
                "a buy curve with one price twice",
                one(&[("steps", &steps(&["250.00", "200.00", "200.00"]))]),
                "$[0].periods[0].steps[2].price",
                "monotonic",
            ),
            bad(
                "one MTU twice",
                one(&[("periods", &format!("[{}, {}]", at(MTU), at(MTU)))]),
                "$[0].periods[1].mtu_start",
                "duplicate_mtu",
            ),
            bad(
                "one MTU twice, once with a fraction",
                one(&[(
                    "periods",
                    &format!("[{}, {}]", at(MTU), at("2026-11-28T06:00:00.000Z")),
                )]),
                "$[0].periods[1].mtu_start",
                "duplicate_mtu",
            ),
            bad(
                "201 steps",
                one(&[("steps", &many)]),
                "$[0].periods[0].steps",
                "too_many_steps",
            ),
            bad(
                "one record_id twice in the batch",
                batch(&[order(&[]), order(&[])]),
                "$[1].record_id",
                "duplicate_record_id",
            ),
            bad(
                "one record_id at both ends of the batch",
                batch(&[order(&[]), order(&[("record_id", "\"@ID-x\"")]), order(&[])]),
                "$[2].record_id",
                "duplicate_record_id",
            ),
        ],
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// 415: the media type.
// ---------------------------------------------------------------------------------------------

/// POSTs a valid order with this Content-Type (or none): 415 unsupported_media_type, nothing
/// stored, the server still answers.
async fn refused_as_unsupported_media_type(
    name: &str,
    content_type: Option<&str>,
    multipart: bool,
) {
    let s = Server::start(name);
    let id = format!("{name}-1");
    let json = format!("[{}]", valid(&id, &[]));
    let body = if multipart {
        format!(
            "--XyZ\r\nContent-Disposition: form-data; name=\"orders\"; filename=\"orders.json\"\r\nContent-Type: application/json\r\n\r\n{json}\r\n--XyZ--\r\n"
        )
    } else {
        json
    };
    let r = s.post(content_type, body).await;
    assert_eq!(r.status, 415, "Content-Type {content_type:?}: {r}");
    assert_eq!(r.json["error"], "unsupported_media_type", "{r}");
    let message = r.json["message"].as_str().unwrap_or("");
    assert!(
        message.contains("Content-Type") && message.contains("application/json"),
        "the message should name Content-Type and application/json: {r}"
    );
    s.assert_alive().await;
    s.assert_not_stored(&[&id]).await;
}

#[tokio::test]
async fn a_text_plain_post_is_415_and_stores_nothing() {
    refused_as_unsupported_media_type("ct-text", Some("text/plain"), false).await;
}

#[tokio::test]
async fn a_form_urlencoded_post_is_415_and_stores_nothing() {
    refused_as_unsupported_media_type("ct-form", Some("application/x-www-form-urlencoded"), false)
        .await;
}

#[tokio::test]
async fn a_multipart_post_is_415_and_stores_nothing() {
    refused_as_unsupported_media_type(
        "ct-multipart",
        Some("multipart/form-data; boundary=XyZ"),
        true,
    )
    .await;
}

#[tokio::test]
async fn a_post_without_content_type_is_415_and_stores_nothing() {
    refused_as_unsupported_media_type("ct-none", None, false).await;
}

#[tokio::test]
async fn json_look_alike_content_types_are_415_and_store_nothing() {
    let s = Server::start("ct-lookalike");
    let types = ["text/json", "application/jsonx", "application/x-json"];
    for (i, ct) in types.iter().enumerate() {
        let id = format!("ct-lookalike-{i}");
        let r = s.post(Some(ct), format!("[{}]", valid(&id, &[]))).await;
        assert_eq!(r.status, 415, "Content-Type {ct}: {r}");
        assert_eq!(r.json["error"], "unsupported_media_type", "{ct}: {r}");
        s.assert_alive().await;
        s.assert_not_stored(&[&id]).await;
    }
}

#[tokio::test]
async fn application_json_with_parameters_in_any_case_is_accepted() {
    let s = Server::start("ct-params");
    let types = [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "APPLICATION/JSON;Charset=UTF-8",
    ];
    let mut ids = Vec::new();
    for (i, ct) in types.iter().enumerate() {
        let id = format!("ct-params-{i}");
        let r = s.post(Some(ct), format!("[{}]", valid(&id, &[]))).await;
        assert_eq!(r.status, 202, "Content-Type {ct}: {r}");
        assert_eq!(r.json["orders"][0]["status"], "accepted", "{ct}: {r}");
        ids.push(id);
    }
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    s.assert_stored_once(&ids).await;
}

// ---------------------------------------------------------------------------------------------
// 413: too many orders, too many bytes.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_batch_of_101_orders_is_413_batch_too_large_and_stores_nothing_but_100_are_accepted() {
    let s = Server::start("batch101");
    let ids: Vec<String> = (0..101).map(|i| format!("big-{i}")).collect();
    let orders: Vec<String> = ids.iter().map(|id| valid(id, &[])).collect();
    let r = s.post_json(batch(&orders)).await;
    assert_eq!(r.status, 413, "{r}");
    assert_eq!(r.json["error"], "batch_too_large", "{r}");
    s.assert_alive().await;
    s.assert_not_stored(&["big-0", "big-50", "big-100"]).await;
    assert!(s.submitted().is_empty(), "{:?}", s.submitted());

    let ids: Vec<String> = (0..100).map(|i| format!("ok-{i}")).collect();
    let orders: Vec<String> = ids.iter().map(|id| valid(id, &[])).collect();
    let r = s.post_json(batch(&orders)).await;
    assert_eq!(r.status, 202, "100 orders are allowed: {r}");
    assert_eq!(s.submitted().len(), 100);
}

/// A valid one-order batch padded with spaces to `size` bytes.
fn padded(id: &str, size: usize) -> Vec<u8> {
    let head = format!("[{}", valid(id, &[]));
    assert!(head.len() + 1 < size);
    let mut body = head.into_bytes();
    body.resize(size - 1, b' ');
    body.push(b']');
    body
}

#[tokio::test]
async fn a_10_mb_body_is_413_body_too_large_and_stores_nothing() {
    let s = Server::start("body10mb");
    let body = padded("huge-1", 10_000_000);
    let r = raw(&s.addr(), json_post(&body), false, Duration::from_secs(30)).await;
    assert_eq!(r.status(), Some(413), "{r}");
    if r.complete() {
        assert_eq!(r.json()["error"], "body_too_large", "{r}");
    }
    s.assert_alive().await;
    s.assert_not_stored(&["huge-1"]).await;
}

#[tokio::test]
async fn a_chunked_body_over_6_mib_is_413_body_too_large_and_stores_nothing() {
    let s = Server::start("chunked");
    let body = padded("chunked-1", 6 * MIB + 1024);
    let mut bytes = request(
        "POST",
        "/orders",
        &[
            "Content-Type: application/json".to_string(),
            "Transfer-Encoding: chunked".to_string(),
        ],
        b"",
    );
    for chunk in body.chunks(64 * 1024) {
        bytes.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        bytes.extend_from_slice(chunk);
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b"0\r\n\r\n");
    let r = raw(&s.addr(), bytes, false, Duration::from_secs(30)).await;
    assert_eq!(r.status(), Some(413), "{r}");
    if r.complete() {
        assert_eq!(r.json()["error"], "body_too_large", "{r}");
    }
    s.assert_alive().await;
    s.assert_not_stored(&["chunked-1"]).await;
}

#[tokio::test]
async fn a_body_of_exactly_6_mib_is_not_refused_for_its_size() {
    let s = Server::start("body6mib");
    let r = s
        .post_json(String::from_utf8(padded("six-1", 6 * MIB)).unwrap())
        .await;
    assert_eq!(r.status, 202, "a 6 MiB body is within the limit: {r}");
    s.assert_stored_once(&["six-1"]).await;
}

// ---------------------------------------------------------------------------------------------
// Cut-short bodies, slow clients, long URLs.
// ---------------------------------------------------------------------------------------------

/// Content-Length 5000, then 100 bytes of a valid batch.
fn cut_short(id: &str) -> Vec<u8> {
    let body = format!("[{}]", valid(id, &[]));
    request(
        "POST",
        "/orders",
        &[
            "Content-Type: application/json".to_string(),
            "Content-Length: 5000".to_string(),
        ],
        &body.as_bytes()[..100],
    )
}

/// A 400, or the connection closed without an answer; never a 413 or a 5xx.
fn assert_400_or_closed(r: &Raw) {
    match r.status() {
        Some(400) => {}
        Some(status) => panic!("a cut-short body answered {status}, not 400: {r}"),
        None => assert!(
            r.closed,
            "a cut-short body got neither an answer nor a close: {r}"
        ),
    }
}

#[tokio::test]
async fn a_body_cut_short_and_half_closed_is_400_or_a_close_never_413_or_5xx() {
    let s = Server::start("cut-half");
    let r = raw(&s.addr(), cut_short("cut-1"), true, Duration::from_secs(15)).await;
    assert_400_or_closed(&r);
    s.assert_alive().await;
    s.assert_not_stored(&["cut-1"]).await;
}

/// A body that stops arriving is a 408 once the read timeout passes (or a close).
fn assert_408_or_closed(r: &Raw) {
    match r.status() {
        Some(408) => assert_eq!(r.json()["error"], "request_timeout", "{r}"),
        Some(status) => panic!("a stalled body answered {status}, not 408: {r}"),
        None => assert!(
            r.closed,
            "a stalled body got neither an answer nor a close: {r}"
        ),
    }
}

#[tokio::test]
async fn a_body_cut_short_then_stalled_is_408_or_a_close_never_413_or_5xx() {
    let s = Server::start("cut-stall");
    let r = raw(
        &s.addr(),
        cut_short("cut-2"),
        false,
        Duration::from_secs(20),
    )
    .await;
    assert_408_or_closed(&r);
    s.assert_alive().await;
    s.assert_not_stored(&["cut-2"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_connections_stalled_mid_headers_neither_delay_a_normal_request_nor_stay_open_past_the_read_timeout()
 {
    let s = Server::start("slowloris");
    let addr = s.addr();
    let stalled: Vec<_> = (0..60)
        .map(|_| {
            let addr = addr.clone();
            tokio::spawn(async move {
                let half = b"POST /orders HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty".to_vec();
                raw(&addr, half, false, Duration::from_secs(15)).await
            })
        })
        .collect();
    // Let every one of them connect and send its half headers.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let fresh = client();
    let t = Instant::now();
    let r = send(fresh.get(s.url("/orders/nope"))).await;
    let took = t.elapsed();
    assert_eq!(r.status, 404, "{r}");
    assert!(
        took < Duration::from_secs(2),
        "GET took {took:?} beside 60 stalled connections"
    );
    let t = Instant::now();
    let r = send(
        fresh
            .post(s.url("/orders"))
            .header("content-type", "application/json")
            .body(format!("[{}]", valid("slow-ok", &[]))),
    )
    .await;
    let took = t.elapsed();
    assert_eq!(r.status, 202, "{r}");
    assert!(
        took < Duration::from_secs(2),
        "POST took {took:?} beside 60 stalled connections"
    );

    let mut open = Vec::new();
    for (i, task) in stalled.into_iter().enumerate() {
        let r = task.await.expect("a stalled connection");
        if let Some(status) = r.status() {
            assert!(
                (400..500).contains(&status),
                "stalled connection {i} answered {status}: {r}"
            );
        } else if !r.closed {
            open.push(format!("{i}: {r}"));
        }
    }
    assert!(
        open.is_empty(),
        "{} of 60 stalled connections still open after 15 s (the read timeout is ~10 s):\n{}",
        open.len(),
        open.join("\n")
    );
    s.assert_alive().await;
    s.assert_stored_once(&["slow-ok"]).await;
}

#[tokio::test]
async fn a_100_kb_url_is_a_4xx_or_a_polite_close_and_the_server_still_serves() {
    let s = Server::start("longurl");
    let long = "a".repeat(100_000);
    for (method, target) in [
        ("GET", format!("/orders/{long}")),
        ("GET", format!("/orders/nope?x={long}")),
        ("GET", format!("/{long}")),
        ("POST", format!("/orders?x={long}")),
    ] {
        let body = format!("[{}]", valid("long-1", &[]));
        let bytes = request(
            method,
            &target,
            &[
                "Content-Type: application/json".to_string(),
                format!("Content-Length: {}", body.len()),
            ],
            body.as_bytes(),
        );
        let r = raw(&s.addr(), bytes, false, Duration::from_secs(15)).await;
        let what = format!("{method} {}...", &target[..20]);
        match r.status() {
            Some(status) => assert!(
                (400..500).contains(&status),
                "{what} answered {status}: {r}"
            ),
            None => assert!(r.closed, "{what}: neither an answer nor a close: {r}"),
        }
        if let Err(why) = s.alive().await {
            panic!("after {what}: {why}");
        }
    }
    s.assert_not_stored(&["long-1"]).await;
}

// ---------------------------------------------------------------------------------------------
// Methods, paths and ids in the URL.
// ---------------------------------------------------------------------------------------------

/// Panics listing every failure, if there is any.
fn all_well(failures: &[String], of: usize) {
    assert!(
        failures.is_empty(),
        "{} problem(s) over {of} cases:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

#[tokio::test]
async fn other_methods_on_orders_are_405_with_allow_post() {
    let s = Server::start("m-orders");
    let methods = ["GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "PURGE"];
    let mut failures = Vec::new();
    for (i, m) in methods.iter().enumerate() {
        let id = format!("m-orders-{i}");
        let method = reqwest::Method::from_bytes(m.as_bytes()).unwrap();
        let r = send(
            s.http
                .request(method, s.url("/orders"))
                .header("content-type", "application/json")
                .body(format!("[{}]", valid(&id, &[]))),
        )
        .await;
        if r.status != 405 || r.allow.as_deref() != Some("POST") {
            failures.push(format!(
                "{m} /orders: want 405 with Allow: POST, got Allow {:?}, {r}",
                r.allow
            ));
        }
        s.assert_alive().await;
    }
    all_well(&failures, methods.len());
    let ids: Vec<String> = (0..methods.len())
        .map(|i| format!("m-orders-{i}"))
        .collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    s.assert_not_stored(&ids).await;
}

#[tokio::test]
async fn other_methods_on_an_order_are_405_with_allow_get() {
    let s = Server::start("m-order");
    s.store(&format!("[{}]", valid("m-order-1", &[]))).await;
    // GET reads, PUT amends, DELETE withdraws; nothing else.
    let methods = ["POST", "PATCH", "OPTIONS", "PURGE"];
    let mut failures = Vec::new();
    for m in methods {
        let method = reqwest::Method::from_bytes(m.as_bytes()).unwrap();
        let changed = format!("[{}]", valid("m-order-1", &[("price", "\"1.00\"")]));
        let r = send(
            s.http
                .request(method, s.url("/orders/m-order-1"))
                .header("content-type", "application/json")
                .body(changed),
        )
        .await;
        if r.status != 405 || r.allow.as_deref() != Some("GET, PUT, DELETE") {
            failures.push(format!(
                "{m} /orders/m-order-1: want 405 with Allow: GET, PUT, DELETE, got Allow {:?}, {r}",
                r.allow
            ));
        }
        s.assert_alive().await;
    }
    all_well(&failures, methods.len());
    let r = s.get("/orders/m-order-1").await;
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(
        r.json["order"]["periods"][0]["steps"][0]["price"], "250.00",
        "the order was changed: {r}"
    );
    assert_eq!(s.submitted(), ["m-order-1"]);
}

/// Each (method, path) over a raw connection with a `[]` JSON body must answer 404.
async fn all_404(name: &str, cases: &[(&str, &str)]) {
    let s = Server::start(name);
    let mut failures = Vec::new();
    for (method, path) in cases {
        let bytes = request(
            method,
            path,
            &[
                "Content-Type: application/json".to_string(),
                "Content-Length: 2".to_string(),
            ],
            b"[]",
        );
        let r = raw(&s.addr(), bytes, false, Duration::from_secs(10)).await;
        if r.status() != Some(404) {
            failures.push(format!("{method} {path}: want 404, {r}"));
        }
        s.assert_alive().await;
    }
    all_well(&failures, cases.len());
    assert!(s.submitted().is_empty(), "{:?}", s.submitted());
}

#[tokio::test]
async fn unknown_paths_are_404() {
    all_404(
        "paths",
        &[
            ("GET", "/"),
            ("POST", "/"),
            ("GET", "/order"),
            ("POST", "/order"),
            ("GET", "/v1/orders"),
            ("POST", "/v1/orders"),
            ("GET", "/ORDERS"),
            ("POST", "/orders.json"),
            ("GET", "/.env"),
            ("GET", "/orders-x/1"),
        ],
    )
    .await;
}

/// `/orders/{record_id}` is one segment, as API Gateway routes it: a deeper path is no route.
#[tokio::test]
async fn a_path_deeper_than_an_order_is_404() {
    all_404(
        "deeper",
        &[
            ("GET", "/orders/a/b"),
            ("POST", "/orders/a/b"),
            ("GET", "/orders/desk-a:x/result"),
        ],
    )
    .await;
}

/// GET over a raw connection, so that the target goes out exactly as written (a client would
/// normalise `%2E%2E` and `..`).
async fn raw_get(s: &Server, target: &str) -> Raw {
    raw(
        &s.addr(),
        request("GET", target, &[], b""),
        false,
        Duration::from_secs(10),
    )
    .await
}

#[tokio::test]
async fn a_percent_encoded_id_is_decoded_before_lookup() {
    // `..` is not a valid id (no URL can name it): whichever way it is written, a 400 that
    // says so.
    let s0 = Server::start("dots");
    for target in ["/orders/%2E%2E", "/orders/.."] {
        let r = raw_get(&s0, target).await;
        assert_eq!(r.status(), Some(400), "GET {target}: {r}");
    }
    drop(s0);
    let s = Server::start("pct");
    s.store(&format!("[{}]", valid("desk-a:x", &[]))).await;
    let cases = [
        ("/orders/desk-a%3Ax", 200),
        ("/orders/desk-a%3ax", 200),
        ("/orders/desk-a:x", 200),
        ("/orders/%64esk-a%3Ax", 200),
        ("/orders/desk-a%3Anope", 404),
        ("/orders/desk-b%3Ax", 404),
    ];
    let mut failures = Vec::new();
    for (target, status) in cases {
        let r = raw_get(&s, target).await;
        let found = status != 200 || r.json()["record_id"] == "desk-a:x";
        if r.status() != Some(status) || !found {
            failures.push(format!("GET {target}: want {status}, {r}"));
        }
    }
    all_well(&failures, cases.len());
    s.assert_alive().await;
}

#[tokio::test]
async fn an_invalid_id_in_the_path_is_400_invalid_record_id() {
    let s = Server::start("badid");
    let too_long = format!("/orders/{}", "a".repeat(65));
    let targets = [
        "/orders/a%2Fb",
        "/orders/a%2fb",
        too_long.as_str(),
        "/orders/a%20b",
        "/orders/a%00b",
        "/orders/a%E2%80%AEb",
        "/orders/%FF",
    ];
    let mut failures = Vec::new();
    for target in targets {
        let r = raw_get(&s, target).await;
        if r.status() != Some(400) || r.json()["error"] != "invalid_record_id" {
            failures.push(format!(
                "GET {}: want 400 invalid_record_id, {r}",
                clip(target)
            ));
        }
        s.assert_alive().await;
    }
    all_well(&failures, targets.len());
}

// ---------------------------------------------------------------------------------------------
// Floods, conflicts and races.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_connections_each_posting_a_batch_are_all_answered_202_and_stored() {
    let s = Server::start("flood");
    let url = s.url("/orders");
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(200));
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let url = url.clone();
            let start = start.clone();
            tokio::spawn(async move {
                // One client each: a connection each.
                let http = client();
                let ids = [format!("flood-{i}-a"), format!("flood-{i}-b")];
                let body = batch(&[valid(&ids[0], &[]), valid(&ids[1], &[("zone", "\"NL\"")])]);
                start.wait().await;
                let r = send(
                    http.post(&url)
                        .header("content-type", "application/json")
                        .body(body),
                )
                .await;
                (ids, r)
            })
        })
        .collect();
    let mut ids = Vec::new();
    let mut failures = Vec::new();
    for task in tasks {
        let (pair, r) = task.await.expect("a poster");
        if r.status != 202 {
            failures.push(format!("{}: {r}", pair[0]));
        }
        ids.extend(pair);
    }
    assert!(
        failures.is_empty(),
        "{} of 200 concurrent POSTs not 202:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    s.assert_stored_once(&ids).await;
}

#[tokio::test]
async fn a_batch_with_a_conflicting_record_id_is_409_and_stores_none_of_its_new_orders() {
    let s = Server::start("conflict");
    s.store(&format!("[{}]", valid("known", &[]))).await;
    let changed = valid("known", &[("price", "\"240.00\"")]);
    for (new, body) in [
        ("new-1", batch(&[valid("new-1", &[]), changed.clone()])),
        ("new-2", batch(&[changed.clone(), valid("new-2", &[])])),
    ] {
        let r = s.post_json(body).await;
        assert_eq!(r.status, 409, "{r}");
        assert_eq!(r.json["error"], "record_id_conflict", "{r}");
        assert!(
            r.json["message"].as_str().unwrap_or("").contains("known"),
            "the message should name the conflicting id: {r}"
        );
        s.assert_alive().await;
        s.assert_not_stored(&[new]).await;
    }
    let r = s.get("/orders/known").await;
    assert_eq!(
        r.json["order"]["periods"][0]["steps"][0]["price"], "250.00",
        "the known order was changed: {r}"
    );
    assert_eq!(s.submitted(), ["known"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_batches_sharing_a_record_id_with_different_bodies_one_202_one_409_and_only_the_winner_stored()
 {
    let s = Server::start("race");
    for round in 0..8 {
        let shared = format!("race-{round}-shared");
        let (a, b) = (format!("race-{round}-a"), format!("race-{round}-b"));
        let body_a = batch(&[valid(&shared, &[("price", "\"250.00\"")]), valid(&a, &[])]);
        let body_b = batch(&[valid(&shared, &[("price", "\"240.00\"")]), valid(&b, &[])]);
        let (ca, cb) = (client(), client());
        let post = |http: reqwest::Client, body: String| {
            send(
                http.post(s.url("/orders"))
                    .header("content-type", "application/json")
                    .body(body),
            )
        };
        let (ra, rb) = tokio::join!(post(ca, body_a), post(cb, body_b));
        let (winner, loser, price, rw, rl) = match (ra.status, rb.status) {
            (202, 409) => (&a, &b, "250.00", &ra, &rb),
            (409, 202) => (&b, &a, "240.00", &rb, &ra),
            _ => panic!("round {round}: want one 202 and one 409, got\n  A: {ra}\n  B: {rb}"),
        };
        assert_eq!(
            rl.json["error"], "record_id_conflict",
            "round {round}: {rl}"
        );
        assert!(
            rw.json["orders"]
                .as_array()
                .is_some_and(|o| o.iter().all(|o| o["status"] == "accepted")),
            "round {round}: {rw}"
        );
        let g = s.get(&format!("/orders/{winner}")).await;
        assert_eq!(g.status, 200, "round {round}: the winner's new order: {g}");
        let g = s.get(&format!("/orders/{loser}")).await;
        assert_eq!(
            g.status, 404,
            "round {round}: the loser's new order was stored: {g}"
        );
        let g = s.get(&format!("/orders/{shared}")).await;
        assert_eq!(
            g.json["order"]["periods"][0]["steps"][0]["price"], price,
            "round {round}: the shared id holds the winner's order: {g}"
        );
        let submitted = s.submitted();
        for id in [&shared, winner] {
            let n = submitted.iter().filter(|x| *x == id).count();
            assert_eq!(n, 1, "round {round}: {n} OrderSubmitted for {id}");
        }
        assert!(
            !submitted.contains(loser),
            "round {round}: an OrderSubmitted for the loser's {loser}"
        );
    }
    s.assert_alive().await;
}

// ---------------------------------------------------------------------------------------------
// Gate closure.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_repost_after_gate_closure_of_an_order_stored_before_it_is_202_duplicate() {
    // 10:50Z at 60×: the SDAC gate for 2026-11-28 (11:00Z) closes 10 real seconds after start.
    let s = Server::start_with(
        "gate",
        &["--start", "2026-11-27T10:50:00Z", "--speed", "60"],
    );
    let orders = batch(&[valid("gate-1", &[]), valid("gate-2", &[("zone", "\"FR\"")])]);
    s.store(&orders).await;

    // Wait for the gate with a probe that is refused either way (a bad id), so it stores nothing.
    let probe = one(&[("record_id", "\"probe/gate\"")]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = s.post_json(probe.clone()).await;
        assert_eq!(r.status, 400, "the probe: {r}");
        let closed = r.json["errors"].as_array().is_some_and(|errors| {
            errors
                .iter()
                .any(|e| e["rule"] == "gate_closed" && e["path"] == "$[0].delivery_date")
        });
        if closed {
            break;
        }
        assert!(Instant::now() < deadline, "the gate never closed: {r}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    let r = s.post_json(orders.clone()).await;
    assert_eq!(r.status, 202, "a repost after the gate: {r}");
    let statuses = r.json["orders"].as_array().cloned().unwrap_or_default();
    assert_eq!(statuses.len(), 2, "{r}");
    for o in &statuses {
        assert_eq!(o["status"], "duplicate", "{r}");
    }
    // A new order for the same auction is refused now.
    let r = s.post_json(format!("[{}]", valid("gate-late", &[]))).await;
    assert_eq!(r.status, 400, "{r}");
    check_invalid(&r, "$[0].delivery_date", "gate_closed")
        .unwrap_or_else(|why| panic!("{why}: {r}"));
    s.assert_alive().await;
    s.assert_stored_once(&["gate-1", "gate-2"]).await;
    s.assert_not_stored(&["gate-late"]).await;
}

// ---------------------------------------------------------------------------------------------
// Found by a hostile run after the first fixes.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_content_type_sent_twice_is_joined_as_api_gateway_joins_it_and_refused() {
    let s = Server::start("ct-twice");
    let body = format!("[{}]", valid("ct-twice-1", &[]));
    for pair in [
        ["Content-Type: text/plain", "Content-Type: application/json"],
        ["Content-Type: application/json", "Content-Type: text/plain"],
    ] {
        let mut headers: Vec<String> = pair.iter().map(|h| h.to_string()).collect();
        headers.push(format!("Content-Length: {}", body.len()));
        let r = raw(
            &s.addr(),
            request("POST", "/orders", &headers, body.as_bytes()),
            false,
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(r.status(), Some(415), "{pair:?}: {r}");
    }
    s.assert_not_stored(&["ct-twice-1"]).await;
}

#[tokio::test]
async fn a_charset_other_than_utf8_is_415() {
    let s = Server::start("ct-charset");
    for ct in [
        "application/json; charset=latin1",
        "application/json; charset=utf-16",
    ] {
        let r = s
            .post(Some(ct), format!("[{}]", valid("ct-charset-1", &[])))
            .await;
        assert_eq!(r.status, 415, "{ct}: {r}");
    }
    s.assert_not_stored(&["ct-charset-1"]).await;
}

#[tokio::test]
async fn a_client_that_half_closes_after_its_request_still_gets_the_answer() {
    let s = Server::start("half-close");
    for i in 0..20 {
        let id = format!("half-close-{i}");
        let body = format!("[{}]", valid(&id, &[]));
        let r = raw(
            &s.addr(),
            json_post(body.as_bytes()),
            true,
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(r.status(), Some(202), "try {i}: {r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_that_keeps_sending_is_not_cut_off() {
    let s = Server::start("trickle");
    let body = format!("[{}]", valid("trickle-1", &[])).into_bytes();
    let head = format!(
        "POST /orders HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut stream = TcpStream::connect(s.addr()).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    // The body in 24 pieces, one every 0.6 s: 14 s in all, never idle for the read timeout.
    let piece = body.len().div_ceil(24);
    for chunk in body.chunks(piece) {
        stream.write_all(chunk).await.unwrap();
        stream.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("an answer")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
}

#[tokio::test]
async fn six_mib_of_tiny_numbers_is_413_without_building_them_all() {
    let s = Server::start("tiny-numbers");
    let mut body = String::from("[");
    while body.len() < 6 * 1024 * 1024 - 16 {
        body.push_str("1,");
    }
    body.push_str("1]");
    let r = s.post(Some("application/json"), body).await;
    assert_eq!(r.status, 413, "{r}");
    assert_eq!(r.json["error"], "batch_too_large", "{r}");
    assert!(
        r.json["message"]
            .as_str()
            .unwrap_or("")
            .contains("more than 1000 orders"),
        "{r}"
    );
    s.assert_alive().await;
}

/// `METHOD target HTTP/1.1` with the given Host and `Connection: close`, then `headers`.
fn request_to(host: &str, method: &str, target: &str, headers: &[String], body: &[u8]) -> Vec<u8> {
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Found by a hostile run: `energy up` answered whatever Host a request named, so a web page
/// the desk opened could reach it through DNS rebinding (its own name, resolved to 127.0.0.1)
/// and post orders, rules and API destinations. It answers only requests to a loopback name,
/// and from no other web origin than its own.
#[tokio::test]
async fn a_request_for_another_host_or_from_another_origin_is_refused_and_stores_nothing() {
    let s = Server::start("rebind");
    let body = format!("[{}]", valid("rebind-1", &[]));
    let json = |extra: &[&str]| {
        let mut h = vec![
            "Content-Type: application/json".to_string(),
            format!("Content-Length: {}", body.len()),
        ];
        h.extend(extra.iter().map(|e| e.to_string()));
        h
    };
    for (host, extra) in [
        ("rebind.attacker.example", &[][..]),
        ("rebind.attacker.example:8080", &[][..]),
        ("127.0.0.1.attacker.example", &[][..]),
        ("localhost.attacker.example", &[][..]),
        ("127.0.0.1", &["Origin: http://rebind.attacker.example"][..]),
        ("127.0.0.1", &["Origin: null"][..]),
    ] {
        let r = raw(
            &s.addr(),
            request_to(host, "POST", "/orders", &json(extra), body.as_bytes()),
            false,
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(r.status(), Some(403), "Host {host} {extra:?}: {}", r.text());
        assert!(r.text().contains("loopback"), "{}", r.text());
    }
    // The AWS APIs on the same port too.
    let put_rule = br#"{"Name":"Evil","EventBusName":"energy-dev","EventPattern":"{\"source\":[\"energy.orders\"]}"}"#;
    let r = raw(
        &s.addr(),
        request_to(
            "rebind.attacker.example",
            "POST",
            "/",
            &[
                "Content-Type: application/x-amz-json-1.1".to_string(),
                "X-Amz-Target: AWSEvents.PutRule".to_string(),
                format!("Content-Length: {}", put_rule.len()),
            ],
            put_rule,
        ),
        false,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(r.status(), Some(403), "{}", r.text());
    s.assert_not_stored(&["rebind-1"]).await;
    // What a desk's own tools send is answered: loopback names, with or without the port, and
    // the console's own origin.
    let port = s.addr().rsplit(':').next().unwrap().to_string();
    for (host, origin) in [
        ("127.0.0.1".to_string(), None),
        (format!("127.0.0.1:{port}"), None),
        (
            format!("localhost:{port}"),
            Some(format!("http://localhost:{port}")),
        ),
        (format!("[::1]:{port}"), None),
        (
            format!("LOCALHOST:{port}"),
            Some(format!("http://127.0.0.1:{port}")),
        ),
    ] {
        let extra: Vec<String> = origin.iter().map(|o| format!("Origin: {o}")).collect();
        let r = raw(
            &s.addr(),
            request_to(&host, "GET", "/orders/rebind-1", &extra, b""),
            false,
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(r.status(), Some(404), "Host {host}: {}", r.text());
    }
}
