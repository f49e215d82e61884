//! `energy demo`: one order of every outcome through the whole choreography, on `energy up`'s
//! stack: the orders go over HTTP, the template's rules route the events, the scheduler fires the
//! evaluator's checks and the sweeper runs, all on the embedded database.
//!
//! The market clock starts at 11:00 Brussels time, an hour before tomorrow's SDAC gate closes,
//! and runs 1500 times faster than the wall clock, so the wait for the 12:45 publication and the
//! evaluator's backoff up to giving up take seconds. Every event is printed as it is delivered, then a summary; the
//! command fails if any outcome is missing, which makes it a smoke test as well as a tour.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use energy_core::calendar::{MarketRules, market_date};
use energy_core::lifecycle::OrderRecord;
use energy_core::market::Zone;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

/// The outcomes the demo must show.
pub const OUTCOMES: [&str; 6] = [
    "ACCEPTED",
    "PARTIALLY_ACCEPTED",
    "REJECTED",
    "INVALID",
    "RESULTS_TIMEOUT",
    "CANCELLED",
];

/// One line of the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryLine {
    pub record_id: String,
    pub outcome: String,
    pub state: String,
    pub checks: u32,
    pub detail: String,
}

/// What a demo run produced.
#[derive(Debug, Clone)]
pub struct Report {
    pub lines: Vec<SummaryLine>,
    pub events: usize,
    pub slack_messages: usize,
    pub result_objects: usize,
    pub simulated: SignedDuration,
    /// Wall time from start-up to the summary.
    pub real: std::time::Duration,
    /// Every event that went over the bus, as delivered.
    pub archive: Vec<Value>,
}

impl Report {
    /// Outcomes that did not appear.
    pub fn missing(&self) -> Vec<&'static str> {
        OUTCOMES
            .iter()
            .copied()
            .filter(|o| !self.lines.iter().any(|l| l.outcome == *o))
            .collect()
    }
}

fn step(price: &str, quantity: &str) -> Value {
    json!({"price": price, "quantity": quantity})
}

fn order(
    id: &str,
    zone: &str,
    side: &str,
    day: Date,
    mtus: &[Timestamp],
    steps: Vec<Value>,
) -> Value {
    json!({
        "record_id": id,
        "market": "SDAC",
        "delivery_date": day.to_string(),
        "zone": zone,
        "portfolio": "DEMO-DESK",
        "side": side,
        "periods": mtus.iter().map(|m| json!({"mtu_start": m.to_string(), "steps": steps})).collect::<Vec<_>>(),
    })
}

/// The demo's orders for `day`: accepted, partially accepted, rejected, never published.
pub fn sample_batch(rules: &MarketRules, day: Date) -> Value {
    let auction = energy_core::calendar::AuctionId {
        market: energy_core::market::Market::Sdac,
        delivery_date: day,
    };
    let all = rules.mtus(auction).unwrap_or_default();
    // 07:00–08:00 local: the morning peak, four quarter-hours.
    let morning: Vec<Timestamp> = all.iter().copied().skip(28).take(4).collect();
    json!([
        order(
            "demo-accepted",
            "DE-LU",
            "BUY",
            day,
            &morning,
            vec![step("3000.00", "10.0")]
        ),
        order(
            "demo-partial",
            "NL",
            "BUY",
            day,
            &morning,
            vec![step("500.00", "5.0"), step("1.00", "7.5")]
        ),
        order(
            "demo-rejected",
            "BE",
            "SELL",
            day,
            &morning,
            vec![step("3500.00", "20.0")]
        ),
        order(
            "demo-timeout",
            "FI",
            "BUY",
            day,
            &morning,
            vec![step("250.00", "2.5")]
        ),
    ])
}

/// A batch with mistakes a desk makes: a price above the SDAC cap, an MTU off the grid, a
/// quantity off the lot, a buy curve that ascends.
pub fn invalid_batch(day: Date, first_mtu: Timestamp) -> Value {
    let off_grid = first_mtu
        .saturating_add(SignedDuration::from_mins(7))
        .unwrap_or(first_mtu);
    json!([{
        "record_id": "demo-invalid",
        "market": "SDAC",
        "delivery_date": day.to_string(),
        "zone": "NL",
        "portfolio": "DEMO-DESK",
        "side": "BUY",
        "periods": [
            {"mtu_start": first_mtu.to_string(), "steps": [step("4200.00", "1.0"), step("4300.00", "1.0")]},
            {"mtu_start": off_grid.to_string(), "steps": [step("50.00", "0.05")]}
        ]
    }])
}

/// Where the demo runs and how fast.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Keep the stack's data here (default: a temporary dir, removed at the end).
    pub data_dir: Option<std::path::PathBuf>,
    /// Market seconds per real second.
    pub speed: u32,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            data_dir: None,
            speed: 1500,
        }
    }
}

/// Runs the demo on `energy up`'s stack (HTTP API, template-routed bus, scheduler, sweeper,
/// embedded database) with the market clock compressed; `print` receives every line of output.
pub async fn run(
    options: DemoOptions,
    print: impl FnMut(&str) + Send + 'static,
) -> anyhow::Result<Report> {
    use std::sync::{Arc, Mutex};

    let rules = MarketRules::default();
    let tz = TimeZone::get(energy_core::calendar::MARKET_TIME_ZONE).unwrap_or(TimeZone::UTC);
    let today = market_date(Timestamp::now());
    let day = today.tomorrow().unwrap_or(today);
    // An hour before tomorrow's SDAC gate closes.
    let start = today
        .at(11, 0, 0, 0)
        .to_zoned_datetime(tz.clone())
        .map(|z| z.timestamp())
        .unwrap_or_else(|_| Timestamp::now());
    let (data_dir, temporary) = demo_dir(&options)?;
    let print = Arc::new(Mutex::new(print));
    let say = {
        let print = print.clone();
        move |line: &str| (print.lock().unwrap_or_else(|e| e.into_inner()))(line)
    };
    let clock = {
        let tz = tz.clone();
        move |t: Timestamp| {
            t.to_zoned_datetime(tz.clone())
                .strftime("%a %H:%M:%S")
                .to_string()
        }
    };
    let deliveries = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let observer = counting_observer(say.clone(), deliveries.clone());
    let mut args = crate::up::UpArgs::new(data_dir.clone());
    args.speed = options.speed;
    args.start = Some(start);
    args.never_publish = vec![Zone::Fi];
    args.decouple = vec![Zone::DeLu];
    args.refuse_withdrawals = vec![Zone::Pl];
    let real_start = std::time::Instant::now();
    let running = crate::up::start(&args, observer).await?;
    let base = format!("http://{}", running.addr);
    say(&format!(
        "Energy demo on `energy up`: {base}, data in {}\nSDAC delivery day {day}; market clock from {} Brussels time at {}× (FI results never come; DE-LU is decoupled: its preliminary result is withdrawn; the platform refuses withdrawals in PL)\n",
        data_dir.display(),
        clock(start),
        options.speed
    ));
    let http = reqwest::Client::new();
    let (ids, bad_status, bad_body) =
        post_demo_orders(&http, &base, &rules, day, start, &say).await?;
    say("\nEvents as they are delivered (market time):");

    wait_until_final(&running, &http, &base, &ids).await?;
    let simulated = running.now().duration_since(start);
    let lines = summary_lines(&running, &ids, bad_status, &bad_body).await?;
    let (archive, notifications) = archive_and_notifications(&running).await?;
    let result_objects = count_files(&data_dir.join("results"));
    running.shutdown().await;
    let report = Report {
        lines,
        events: deliveries.load(std::sync::atomic::Ordering::SeqCst),
        slack_messages: notifications.len(),
        result_objects,
        simulated,
        real: real_start.elapsed(),
        archive,
    };
    say(&render_summary(&report, &notifications));
    if temporary {
        let _ = std::fs::remove_dir_all(&data_dir);
    } else {
        say(&format!(
            "  the stack's data stays in {0}: energy events list --data-dir {0}",
            data_dir.display()
        ));
    }
    Ok(report)
}

/// One summary line per sample order, and one for the refused batch.
async fn summary_lines(
    running: &crate::up::Running,
    ids: &[String],
    bad_status: u16,
    bad_body: &Value,
) -> anyhow::Result<Vec<SummaryLine>> {
    let mut lines = Vec::new();
    for id in ids {
        let id = energy_core::order::RecordId::parse(id).map_err(|e| anyhow::anyhow!("{e}"))?;
        if let Some(r) = running.adapters.orders.get(&id).await? {
            lines.push(summary_line(&r));
        }
    }
    lines.push(SummaryLine {
        record_id: "demo-invalid".into(),
        outcome: "INVALID".into(),
        state: "not stored".into(),
        checks: 0,
        detail: format!(
            "HTTP {bad_status}: {}",
            bad_body["message"].as_str().unwrap_or("")
        ),
    });
    Ok(lines)
}

/// Prints each delivery but idle sweeps, and counts them all.
fn counting_observer(
    say: impl Fn(&str) + Send + Sync + 'static,
    deliveries: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> crate::up::engine::Observer {
    std::sync::Arc::new(move |log: &crate::up::engine::DeliveryLog| {
        deliveries.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if !log.quiet {
            say(&format!("  {}", crate::up::console_line(log)));
        }
    })
}

/// Posts the sample batch (twice: the second is all duplicates) and a batch with four mistakes;
/// the sample's ids and the refused batch's answer.
async fn post_demo_orders(
    http: &reqwest::Client,
    base: &str,
    rules: &MarketRules,
    day: jiff::civil::Date,
    start: Timestamp,
    say: &impl Fn(&str),
) -> anyhow::Result<(Vec<String>, u16, Value)> {
    let post = |body: String| {
        let http = http.clone();
        let url = format!("{base}/orders");
        async move {
            let r = http
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await?;
            let status = r.status().as_u16();
            let body: Value = r.json().await?;
            anyhow::Ok((status, body))
        }
    };
    let batch = sample_batch(rules, day);
    let ids: Vec<String> = batch
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["record_id"].as_str().map(String::from))
        .collect();
    say(&format!(
        "POST /orders  ({} orders: accepted, partial, rejected, never published)",
        ids.len()
    ));
    let (status, body) = post(batch.to_string()).await?;
    say(&format!("  → {status} {body}"));
    let (status, body) = post(batch.to_string()).await?;
    say(&format!(
        "POST /orders  (the same batch again)\n  → {status} {body}"
    ));
    let first_mtu = rules
        .mtus(energy_core::calendar::AuctionId {
            market: energy_core::market::Market::Sdac,
            delivery_date: day,
        })
        .ok()
        .and_then(|m| m.first().copied())
        .unwrap_or(start);
    let (bad_status, bad_body) = post(invalid_batch(day, first_mtu).to_string()).await?;
    say(&format!(
        "POST /orders  (one order with four mistakes)\n  → {bad_status} {}",
        bad_body["message"].as_str().unwrap_or("")
    ));
    for e in bad_body["errors"].as_array().into_iter().flatten() {
        say(&format!("      {}", e["message"].as_str().unwrap_or("")));
    }
    let mut ids = ids;
    ids.extend(change_demo_orders(http, base, rules, day, say).await?);
    Ok((ids, bad_status, bad_body))
}

/// Three more orders the desk changes its mind about before the gate: one withdrawn
/// (`DELETE`), one re-priced from out of the money to in it (`PUT`), one whose withdrawal the
/// platform refuses (`DELETE` in PL). Their ids.
async fn change_demo_orders(
    http: &reqwest::Client,
    base: &str,
    rules: &MarketRules,
    day: Date,
    say: &impl Fn(&str),
) -> anyhow::Result<Vec<String>> {
    let auction = energy_core::calendar::AuctionId {
        market: energy_core::market::Market::Sdac,
        delivery_date: day,
    };
    let morning: Vec<Timestamp> = rules
        .mtus(auction)
        .unwrap_or_default()
        .into_iter()
        .skip(28)
        .take(4)
        .collect();
    let cancelled = order(
        "demo-cancelled",
        "FR",
        "BUY",
        day,
        &morning,
        vec![step("3000.00", "4.0")],
    );
    let cheap = order(
        "demo-amended",
        "AT",
        "BUY",
        day,
        &morning,
        vec![step("-400.00", "3.0")],
    );
    let amended = order(
        "demo-amended",
        "AT",
        "BUY",
        day,
        &morning,
        vec![step("3000.00", "3.0")],
    );
    let kept = order(
        "demo-kept",
        "PL",
        "BUY",
        day,
        &morning,
        vec![step("3000.00", "2.0")],
    );
    let send = |method: reqwest::Method, path: &str, body: Option<String>| {
        let mut request = http
            .request(method, format!("{base}{path}"))
            .header("content-type", "application/json");
        if let Some(body) = body {
            request = request.body(body);
        }
        async move {
            let r = request.send().await?;
            let status = r.status().as_u16();
            let body: Value = r.json().await?;
            anyhow::Ok((status, body))
        }
    };
    let (status, _) = send(
        reqwest::Method::POST,
        "/orders",
        Some(json!([cancelled, cheap, kept]).to_string()),
    )
    .await?;
    say(&format!(
        "POST /orders  (demo-cancelled, demo-amended bid at -400.00, demo-kept)\n  → {status}"
    ));
    let (status, body) = send(reqwest::Method::DELETE, "/orders/demo-cancelled", None).await?;
    say(&format!(
        "DELETE /orders/demo-cancelled  (the desk withdraws it)\n  → {status} {}",
        body["state"].as_str().unwrap_or("")
    ));
    let (status, body) = send(
        reqwest::Method::PUT,
        "/orders/demo-amended",
        Some(amended.to_string()),
    )
    .await?;
    say(&format!(
        "PUT /orders/demo-amended  (re-priced at 3000.00)\n  → {status} {}",
        body["state"].as_str().unwrap_or("")
    ));
    // Withdrawn once the platform holds it (a withdrawal before the hand-over needs no platform).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while send(reqwest::Method::GET, "/orders/demo-kept", None)
        .await?
        .1["state"]
        != "PENDING"
    {
        if std::time::Instant::now() > deadline {
            anyhow::bail!("demo-kept was not handed over within 30 s");
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (status, body) = send(reqwest::Method::DELETE, "/orders/demo-kept", None).await?;
    say(&format!(
        "DELETE /orders/demo-kept  (the platform will refuse: the order stays in the auction)\n  → {status} {}",
        body["state"].as_str().unwrap_or("")
    ));
    Ok(vec![
        "demo-cancelled".into(),
        "demo-amended".into(),
        "demo-kept".into(),
    ])
}

/// The demo's data dir (a new temporary one unless given) and whether it is temporary.
fn demo_dir(options: &DemoOptions) -> anyhow::Result<(std::path::PathBuf, bool)> {
    let (data_dir, temporary) = match &options.data_dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!(
                "energy-demo-{}-{}",
                std::process::id(),
                Timestamp::now().as_nanosecond()
            )),
            true,
        ),
    };
    if data_dir.join("energy.db").exists() {
        anyhow::bail!(
            "{} holds a stack already; the demo needs a new data dir",
            data_dir.display()
        );
    }
    Ok((data_dir, temporary))
}

/// Until every order is final and nothing is left to deliver (two minutes at most).
async fn wait_until_final(
    running: &crate::up::Running,
    http: &reqwest::Client,
    base: &str,
    ids: &[String],
) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let mut all_final = true;
        for id in ids {
            let r = http.get(format!("{base}/orders/{id}")).send().await?;
            let v: Value = r.json().await?;
            all_final &= v["final"] == true;
        }
        if all_final && running.shared.db.run(|db| db.pending_deliveries()).await? == 0 {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!("the demo's orders were not final after 2 minutes");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Every archived event, and the text of every notification.
async fn archive_and_notifications(
    running: &crate::up::Running,
) -> anyhow::Result<(Vec<Value>, Vec<String>)> {
    let events = running
        .shared
        .db
        .run(|db| db.events(&crate::db::EventFilter::default()))
        .await?;
    let lines = running.shared.db.run(|db| db.notifications()).await?;
    let notifications = lines
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .map(|v| v["text"].as_str().unwrap_or("").to_string())
                .map_err(|e| anyhow::anyhow!("an unreadable notification line: {e}"))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok((events.into_iter().map(|e| e.body).collect(), notifications))
}

fn count_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                count_files(&p)
            } else {
                usize::from(p.extension().is_some_and(|x| x == "json"))
            }
        })
        .sum()
}

fn summary_line(r: &OrderRecord) -> SummaryLine {
    let outcome = match (&r.result, &r.failure) {
        (_, Some(f)) if f.reason == energy_core::result::FailureReason::ResultsTimeout => {
            "RESULTS_TIMEOUT".to_string()
        }
        (Some(res), _) => serde_json::to_value(res.outcome)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default(),
        (None, Some(f)) => f.reason.to_string(),
        (None, None) if r.state == energy_core::lifecycle::OrderState::Cancelled => {
            "CANCELLED".to_string()
        }
        (None, None) => "-".to_string(),
    };
    let detail = match (&r.result_key, &r.failure, &r.result) {
        (Some(key), _, Some(res)) => format!(
            "{key} ({} MWh, {} EUR)",
            res.totals.accepted_energy_mwh, res.totals.notional_eur
        ),
        (_, Some(f), _) => f.message.clone(),
        _ if r.state == energy_core::lifecycle::OrderState::Cancelled => {
            "withdrawn by the desk before the gate".to_string()
        }
        _ => String::new(),
    };
    SummaryLine {
        record_id: r.order.record_id.to_string(),
        outcome,
        state: r.state.to_string(),
        checks: r.attempt,
        detail,
    }
}

fn render_summary(report: &Report, notifications: &[String]) -> String {
    let mut out = String::from("\nSummary\n");
    let _ = writeln!(
        out,
        "  {:<14} {:<19} {:<10} {:>6}  detail",
        "record_id", "outcome", "state", "checks"
    );
    for l in &report.lines {
        let _ = writeln!(
            out,
            "  {:<14} {:<19} {:<10} {:>6}  {}",
            l.record_id, l.outcome, l.state, l.checks, l.detail
        );
    }
    let mut by_type: BTreeMap<String, usize> = BTreeMap::new();
    for e in &report.archive {
        *by_type
            .entry(e["detail-type"].as_str().unwrap_or("").to_string())
            .or_default() += 1;
    }
    let _ = writeln!(
        out,
        "\n  {} deliveries, {} of market time in {:.1} s; {} result objects, {} Slack messages",
        report.events,
        format_duration(report.simulated),
        report.real.as_secs_f64(),
        report.result_objects,
        report.slack_messages
    );
    let counts: Vec<String> = by_type.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let _ = writeln!(out, "  events on the bus: {}", counts.join(", "));
    for n in notifications {
        let _ = writeln!(out, "  slack: {n}");
    }
    match report.missing().as_slice() {
        [] => {
            let _ = writeln!(out, "  every outcome shown: {}", OUTCOMES.join(", "));
        }
        missing => {
            let _ = writeln!(out, "  MISSING outcomes: {}", missing.join(", "));
        }
    }
    out
}

fn format_duration(d: SignedDuration) -> String {
    let s = d.as_secs();
    format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
}
