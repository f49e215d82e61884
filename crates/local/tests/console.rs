//! The web console in a real browser: headless Chromium driven over WebDriver (Debian's
//! `chromium` and `chromium-driver`, installed by `scripts/test` through `scripts/setup-browser`)
//! against a real `energy up`. Orders are posted through the API; each page is opened and
//! checked; screenshots of every page go to `target/console-screenshots/`.

#[path = "common/up.rs"]
mod up;

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// chromedriver on a free loopback port, stopped on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    /// Kills chromedriver's process group: chromedriver, and the browser and helpers it
    /// started (killing chromedriver alone left them running).
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One WebDriver session (W3C protocol over HTTP).
struct Browser {
    http: reqwest::Client,
    session: String,
    _driver: Driver,
}

impl Browser {
    async fn start() -> Browser {
        let missing = "chromium and chromedriver are needed: run scripts/setup-browser (scripts/test does), or apt-get install chromium chromium-driver";
        let chromium = on_path("chromium").expect(missing);
        let chromedriver = on_path("chromedriver").expect(missing);
        let port = free_port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            // Its own process group, which the browser joins, so that all of it can be stopped.
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = http.get(format!("{}/status", driver.url)).send().await.ok();
            if let Some(r) = ready
                && let Ok(v) = r.json::<Value>().await
                && v["value"]["ready"] == true
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--hide-scrollbars", "--window-size=1280,1000"]
            }
        }}});
        let r: Value = http
            .post(format!("{}/session", driver.url))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {r}"))
            .to_string();
        Browser {
            http,
            session,
            _driver: driver,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self._driver.url, self.session);
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let r: Value = request.send().await.unwrap().json().await.unwrap();
        assert!(
            r["value"].get("error").is_none(),
            "WebDriver {path}: {}",
            r["value"]
        );
        r["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    /// Runs `script` (a function body) in the page; its return value.
    async fn js(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    async fn find(&self, css: &str) -> String {
        let v = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_string()
    }

    async fn click(&self, css: &str) {
        let el = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{el}/click"),
            Some(json!({})),
        )
        .await;
    }

    async fn text(&self, css: &str) -> String {
        let script = format!(
            "const e = document.querySelector({}); return e ? e.textContent : null;",
            json!(css)
        );
        self.js(&script).await.as_str().unwrap_or("").to_string()
    }

    /// Waits until the text of `css` satisfies `ok`, re-reading the page as it is (no reload).
    async fn wait_text(&self, css: &str, within: Duration, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + within;
        loop {
            let t = self.text(css).await;
            if ok(&t) {
                return t;
            }
            assert!(
                Instant::now() < deadline,
                "waited {within:?} on {css}; it says {t:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Presses a key (a WebDriver key code, e.g. Tab `\u{E004}`, Enter `\u{E007}`).
    async fn press(&self, key: &str) {
        self.call(
            reqwest::Method::POST,
            "/actions",
            Some(
                json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
                {"type": "keyDown", "value": key}, {"type": "keyUp", "value": key}]}]}),
            ),
        )
        .await;
    }

    /// The `id` of the focused element.
    async fn focused(&self) -> String {
        self.js("return document.activeElement ? document.activeElement.id : '';")
            .await
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    async fn size(&self, width: u32, height: u32) {
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await;
    }

    /// Saves a PNG of the viewport under `target/console-screenshots/`.
    async fn screenshot(&self, name: &str) -> PathBuf {
        let v = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64(v.as_str().unwrap());
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        let dir = root().join("target/console-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Whether the page is wider than the window (something would need sideways scrolling).
    async fn overflows(&self) -> bool {
        self.js("return document.documentElement.scrollWidth > window.innerWidth + 1;")
            .await
            == json!(true)
    }
}

fn base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes().filter_map(value) {
        acc = (acc << 6) | u32::from(c);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// `GET path` on `energy up`, as JSON.
async fn get_json(http: &reqwest::Client, up: &up::Up, path: &str) -> Value {
    http.get(up.url(path))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// An EventBridge API call on `energy up` (JSON 1.1).
async fn events_api(http: &reqwest::Client, up: &up::Up, op: &str, body: Value) -> Value {
    let r = http
        .post(up.url("/"))
        .header("x-amz-target", format!("AWSEvents.{op}"))
        .header("content-type", "application/x-amz-json-1.1")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert!(status.is_success(), "{op}: {v}");
    v
}

fn order(id: &str, zone: &str, side: &str, periods: Value) -> Value {
    json!({"record_id": id, "market": "SDAC", "delivery_date": "2026-11-28", "zone": zone,
           "portfolio": "desk", "side": side, "periods": periods})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_orders_live_their_story_the_curve_where_they_cleared_and_the_bus() {
    let dir = up::data_dir("console");
    // 10:40Z at 90×: the 11:00Z gate is 13 s away, preliminary results at 11:45Z, final at
    // 12:00Z (53 s).
    let up = up::start(&dir, &["--start", "2026-11-27T10:40:00Z", "--speed", "90"]);
    let http = reqwest::Client::new();
    let mtu = |t: &str, steps: Value| json!({"mtu_start": t, "steps": steps});
    let batch = json!([
        order(
            "c-buy",
            "NL",
            "BUY",
            json!([
                mtu(
                    "2026-11-28T06:00:00Z",
                    json!([{"price": "3000.00", "quantity": "10.0"}, {"price": "40.00", "quantity": "5.0"}])
                ),
                mtu(
                    "2026-11-28T06:15:00Z",
                    json!([{"price": "120.00", "quantity": "8.0"}])
                )
            ])
        ),
        order(
            "c-sell",
            "NL",
            "SELL",
            json!([mtu(
                "2026-11-28T06:00:00Z",
                json!([{"price": "-20.00", "quantity": "4.0"}, {"price": "500.00", "quantity": "6.0"}])
            )])
        ),
        order(
            "c-withdraw",
            "NL",
            "BUY",
            json!([mtu(
                "2026-11-28T06:00:00Z",
                json!([{"price": "55.00", "quantity": "2.0"}])
            )])
        ),
    ]);
    let r = http
        .post(up.url("/orders"))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    let base = up.url("/console");
    let browser = Browser::start().await;

    // Orders: all three, with the count per state.
    browser.goto(&base).await;
    browser
        .wait_text("[data-count=\"all\"]", Duration::from_secs(10), |t| {
            t == "3"
        })
        .await;
    for id in ["c-buy", "c-sell", "c-withdraw"] {
        let row = browser.text(&format!("tr[data-order=\"{id}\"]")).await;
        assert!(
            row.contains("SDAC") && row.contains("NL") && row.contains("2026-11-28"),
            "{id}: {row}"
        );
    }
    browser.screenshot("orders").await;

    // Withdrawn from its page before the gate, with the keyboard alone (Tab to the button,
    // Enter to arm it, Enter to send): the state changes on the page as it stands.
    browser.goto(&format!("{base}/orders/c-withdraw")).await;
    let mut tabs = 0;
    while browser.focused().await != "cancel" {
        tabs += 1;
        assert!(tabs < 30, "Tab never reached the withdraw button");
        browser.press("\u{E004}").await;
    }
    browser.press("\u{E007}").await;
    browser.press("\u{E007}").await;
    browser
        .wait_text("#state", Duration::from_secs(20), |t| {
            t.contains("CANCELLED")
        })
        .await;
    let said = browser.text("#action-status").await;
    assert!(said.starts_with("Withdrawal: 202"), "{said}");

    // Amended from its page before the gate: the sell order's dear step re-priced.
    browser.goto(&format!("{base}/orders/c-sell")).await;
    browser.click("#amend-open").await;
    browser
        .js("const t = document.getElementById('amend-body'); t.value = t.value.replace('500.00', '450.00'); return true;")
        .await;
    browser.click("#amend button[type=submit]").await;
    let said = browser
        .wait_text("#action-status", Duration::from_secs(10), |t| !t.is_empty())
        .await;
    assert!(said.starts_with("Amendment: 202"), "{said}");
    browser
        .wait_text("#body", Duration::from_secs(20), |t| t.contains("450.00"))
        .await;

    // One order's page, left open: it turns STORED without a reload, with its result, its
    // timeline of events and who handled them, and the result object's key.
    browser.goto(&format!("{base}/orders/c-buy")).await;
    browser.js("window.__stayed = true; return true;").await;
    let first = browser.text("#state").await;
    assert!(
        first.contains("PENDING") || first.contains("RECEIVED"),
        "{first}"
    );
    browser
        .wait_text("#state", Duration::from_secs(120), |t| t.contains("STORED"))
        .await;
    assert_eq!(
        browser.js("return window.__stayed === true;").await,
        json!(true),
        "the page changed without a reload"
    );
    assert_eq!(
        browser.text("#result-key").await,
        "results/2026-11-28/NL/c-buy.json"
    );
    let timeline = browser.text("#timeline").await;
    for seen in [
        "OrderSubmitted",
        "evaluate-order",
        "OrderPreliminaryResult",
        "OrderReady",
        "store-result",
        "OrderResultStored",
    ] {
        assert!(timeline.contains(seen), "timeline lacks {seen}: {timeline}");
    }
    let mtus = browser.text("#mtus").await;
    assert!(mtus.contains("06:00") && mtus.contains("06:15"), "{mtus}");
    browser.screenshot("order").await;

    // The curve of its first MTU: the clearing point is the one `energy auction clear` finds
    // on the same steps, and the price the order's result got.
    let query = "market=SDAC&day=2026-11-28&zone=NL&mtu=2026-11-28T06%3A00%3A00Z";
    browser.goto(&format!("{base}/auction?{query}")).await;
    let point = browser
        .js("const c = document.getElementById('clearing-point'); return [c.dataset.price, c.dataset.volume];")
        .await;
    let steps = http
        .get(up.url(&format!("/console/auction/steps.json?{query}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let file = dir.join("steps.json");
    std::fs::write(&file, steps).unwrap();
    let out = up::energy()
        .args(["auction", "clear"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cleared: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        point,
        json!([cleared[0]["clearing_price"], cleared[0]["volume"]])
    );
    let view = get_json(&http, &up, "/orders/c-buy").await;
    let published = view["result"]["mtus"][0]["clearing_price"].clone();
    assert_eq!(point[0], published, "{view}");
    let desk = browser.text("#desk-steps").await;
    assert!(
        desk.contains("c-buy") && desk.contains("c-sell") && !desk.contains("c-withdraw"),
        "{desk}"
    );
    assert!(
        browser
            .js("return document.querySelectorAll('#curve g.desk').length;")
            .await
            == json!(4),
        "the desk's four steps in this MTU are marked"
    );
    browser.screenshot("auction-curve").await;

    // The bus: a consumer made through the EventBridge API whose endpoint is down leaves a
    // dead letter; with the endpoint up, Redrive empties the list and the event arrives.
    let port = free_port();
    let connection = events_api(&http, &up, "CreateConnection", json!({"Name": "c", "AuthorizationType": "API_KEY",
        "AuthParameters": {"ApiKeyAuthParameters": {"ApiKeyName": "x-api-key", "ApiKeyValue": "k"}}})).await;
    let destination = events_api(
        &http,
        &up,
        "CreateApiDestination",
        json!({"Name": "audit",
        "ConnectionArn": connection["ConnectionArn"], "HttpMethod": "POST",
        "InvocationEndpoint": format!("http://127.0.0.1:{port}/audit")}),
    )
    .await;
    events_api(&http, &up, "PutRule", json!({"Name": "DeskAudit", "EventBusName": "energy-dev", "EventPattern": json!({"source": ["desk.console"]}).to_string()})).await;
    events_api(&http, &up, "PutTargets", json!({"Rule": "DeskAudit", "EventBusName": "energy-dev", "Targets": [{"Id": "audit",
        "Arn": destination["ApiDestinationArn"], "RetryPolicy": {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 60}}]})).await;
    events_api(&http, &up, "PutEvents", json!({"Entries": [{"Source": "desk.console", "DetailType": "Audit", "Detail": "{\"n\": 1}", "EventBusName": "energy-dev"}]})).await;
    browser.goto(&format!("{base}/bus")).await;
    browser
        .wait_text("#dlq", Duration::from_secs(20), |t| t.contains("DeskAudit"))
        .await;
    let rules = browser.text("#rule-list").await;
    for rule in [
        "DeskAudit",
        "StoreResultRule",
        "EvaluateOrderRule",
        "the EventBridge API",
        "template.yaml",
    ] {
        assert!(rules.contains(rule), "rules lack {rule}: {rules}");
    }
    assert!(browser.text("#event-tail").await.contains("Audit"));
    browser.screenshot("bus").await;
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let log = got.clone();
    let app = axum::Router::new().route(
        "/audit",
        axum::routing::post(move |body: axum::Json<Value>| async move {
            log.lock().unwrap().push(body.0);
            "ok"
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    browser.click("#redrive-all").await;
    browser
        .wait_text("#dlq", Duration::from_secs(20), |t| {
            t.contains("No dead letters")
        })
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.lock().unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the redriven event never arrived"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(got.lock().unwrap()[0]["detail"]["n"], 1);

    // Phone width: nothing needs sideways scrolling but the tables, which scroll in their box.
    browser.size(390, 844).await;
    for (page, name) in [
        ("", "orders-phone"),
        ("/orders/c-buy", "order-phone"),
        (&format!("/auction?{query}"), "auction-curve-phone"),
        ("/bus", "bus-phone"),
    ] {
        browser.goto(&format!("{base}{page}")).await;
        assert!(!browser.overflows().await, "{page} is wider than a phone");
        browser.screenshot(name).await;
    }
    drop(browser);
    drop(up);
    let _ = std::fs::remove_dir_all(dir);
}

/// What the console refuses (other hosts, other origins, vague or wrong requests), and the
/// curve link of a decoupled zone, which shows the book its final result was cleared on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_refuses_what_it_should_and_a_decoupled_zone_links_its_own_book() {
    let dir = up::data_dir("console-guard");
    // 10:40Z at 600×: the gate 2 s away; DE-LU's final result, cleared alone, at 13:40Z (18 s).
    let up = up::start(
        &dir,
        &[
            "--start",
            "2026-11-27T10:40:00Z",
            "--speed",
            "600",
            "--decouple",
            "DE-LU",
        ],
    );
    let http = reqwest::Client::new();
    let batch = json!([order(
        "de-1",
        "DE-LU",
        "BUY",
        json!([
        {"mtu_start": "2026-11-28T06:00:00Z", "steps": [{"price": "3000.00", "quantity": "5.0"}]}])
    )]);
    let r = http
        .post(up.url("/orders"))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());

    let page = http.get(up.url("/console")).send().await.unwrap();
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let status = |r: reqwest::Response| r.status().as_u16();
    let evil_host = http
        .get(up.url("/console"))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(status(evil_host), 403, "DNS rebinding");
    let redrive = |body: &'static str, origin: Option<&'static str>| {
        let mut r = http
            .post(up.url("/console/dlq/redrive"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        r.send()
    };
    assert_eq!(
        status(
            redrive("all=yes", Some("http://evil.example"))
                .await
                .unwrap()
        ),
        403
    );
    for vague in ["", "foo=bar", "ID=1", "id=x", "id=1&all=yes"] {
        assert_eq!(
            status(redrive(vague, None).await.unwrap()),
            400,
            "{vague:?}"
        );
    }
    let unknown = redrive("id=999999", None).await.unwrap();
    assert_eq!(unknown.status(), 400);
    assert!(unknown.text().await.unwrap().contains("0 of the 1"));
    for bad in [
        "zone=XX",
        "day=0000-01-01",
        "mtu=2026-11-28T06:07:00Z",
        "market=XYZ",
        "alone=maybe",
    ] {
        let r = http
            .get(up.url(&format!("/console/auction?{bad}")))
            .send()
            .await
            .unwrap();
        assert_eq!(status(r), 400, "{bad}");
    }
    assert_eq!(
        status(http.get(up.url("/console?zone=XX")).send().await.unwrap()),
        400
    );
    let lower = http
        .get(up.url("/console?state=received&zone=de-lu"))
        .send()
        .await
        .unwrap();
    assert_eq!(lower.status(), 200);

    // The final result of the decoupled zone: its curve link asks for the zone's own book, and
    // that book's clearing point is the final result's price.
    let deadline = Instant::now() + Duration::from_secs(90);
    let view = loop {
        let v = get_json(&http, &up, "/orders/de-1").await;
        if v["state"] == "STORED" || v["state"] == "NOTIFIED" {
            break v;
        }
        assert!(Instant::now() < deadline, "de-1 never final: {v}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let live = http
        .get(up.url("/console/live/orders/de-1"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let link = live
        .split("href=\"")
        .find(|s| s.starts_with("/console/auction?"))
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("no curve link: {live}"))
        .replace("&amp;", "&");
    assert!(link.ends_with("&alone=true"), "{link}");
    let curve = http
        .get(up.url(&link))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let price = view["result"]["mtus"][0]["clearing_price"]
        .as_str()
        .unwrap_or("none");
    assert!(
        curve.contains(&format!("data-price=\"{price}\"")),
        "{price} not on {link}"
    );
    drop(up);
    let _ = std::fs::remove_dir_all(dir);
}
