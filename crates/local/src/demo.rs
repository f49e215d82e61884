//! `energy demo`: one order of every outcome through the whole choreography, in one process.
//!
//! The clock starts at 09:00 Brussels time the day before tomorrow's SDAC delivery day and jumps
//! from one due instant to the next, so the wait for the 12:45 publication and the evaluator's
//! backoff take milliseconds. Every event is printed as it is delivered, then a summary; the
//! command fails if any outcome is missing, which makes it a smoke test as well as a tour.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use energy_auction::sim::Publication;
use energy_core::calendar::{MarketRules, market_date};
use energy_core::lifecycle::OrderRecord;
use energy_core::market::Zone;
use energy_core::retry::RetryPolicy;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use submit_order::response_body;

use crate::system::{Delivery, System};

/// The outcomes the demo must show.
pub const OUTCOMES: [&str; 5] = [
    "ACCEPTED",
    "PARTIALLY_ACCEPTED",
    "REJECTED",
    "INVALID",
    "RESULTS_TIMEOUT",
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

/// Runs the demo; `print` receives every line of output.
pub async fn run(mut print: impl FnMut(&str)) -> Report {
    let rules = MarketRules::default();
    let tz = TimeZone::get(energy_core::calendar::MARKET_TIME_ZONE).unwrap_or(TimeZone::UTC);
    let today = market_date(Timestamp::now());
    let day = today.tomorrow().unwrap_or(today);
    let start = today
        .at(9, 0, 0, 0)
        .to_zoned_datetime(tz.clone())
        .map(|z| z.timestamp())
        .unwrap_or_else(|_| Timestamp::now());
    let system = System::new(start, rules.clone(), RetryPolicy::default());
    system
        .platform
        .set_publication(Zone::Fi, Publication::Never);
    let clock = |t: Timestamp| {
        t.to_zoned_datetime(tz.clone())
            .strftime("%a %H:%M:%S")
            .to_string()
    };

    print(&format!(
        "Energy demo: SDAC delivery day {day}, simulated clock from {} Brussels time\n",
        clock(start)
    ));
    let batch = sample_batch(&rules, day);
    print(&format!(
        "POST /orders  ({} orders: accepted, partial, rejected, never published)",
        batch.as_array().map_or(0, Vec::len)
    ));
    let resp = system
        .http("POST", "/orders", Some(&batch.to_string()))
        .await;
    print(&format!(
        "  → {} {}",
        resp.status_code,
        response_body(&resp)
    ));
    let resend = system
        .http("POST", "/orders", Some(&batch.to_string()))
        .await;
    print(&format!(
        "POST /orders  (the same batch again)\n  → {} {}",
        resend.status_code,
        response_body(&resend)
    ));

    let first_mtu = rules
        .mtus(energy_core::calendar::AuctionId {
            market: energy_core::market::Market::Sdac,
            delivery_date: day,
        })
        .ok()
        .and_then(|m| m.first().copied())
        .unwrap_or(start);
    let bad = system
        .http(
            "POST",
            "/orders",
            Some(&invalid_batch(day, first_mtu).to_string()),
        )
        .await;
    let bad_body = response_body(&bad);
    print(&format!(
        "POST /orders  (one order with four mistakes)\n  → {} {}",
        bad.status_code,
        bad_body["message"].as_str().unwrap_or("")
    ));
    for e in bad_body["errors"].as_array().into_iter().flatten() {
        print(&format!("      {}", e["message"].as_str().unwrap_or("")));
    }
    print("\nEvents as they are delivered:");
    let mut events = 0usize;
    let mut show = |d: &Delivery| {
        events += 1;
        if d.detail_type == "Scheduled Event" && d.outcome.starts_with("Report { emitted: 0") {
            return;
        }
        print(&format!(
            "  {}  {:<19} {:<14} → {:<14} {}",
            clock(d.at),
            d.detail_type,
            d.record_id,
            d.function.name(),
            d.outcome
        ));
    };
    system.run_until_quiet(&mut show).await;
    while system.advance().await {
        system.run_until_quiet(&mut show).await;
    }

    let mut lines: Vec<SummaryLine> = system.store.all().iter().map(summary_line).collect();
    lines.push(SummaryLine {
        record_id: "demo-invalid".into(),
        outcome: "INVALID".into(),
        state: "not stored".into(),
        checks: 0,
        detail: format!(
            "HTTP {}: {}",
            bad.status_code,
            bad_body["message"].as_str().unwrap_or("")
        ),
    });
    let report = Report {
        lines,
        events,
        slack_messages: system.notifier.sent().len(),
        result_objects: system.results.objects().len(),
        simulated: system.now().duration_since(start),
        archive: system.bus.archive(),
    };
    print(&render_summary(&report, &system));
    report
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
        (None, None) => "-".to_string(),
    };
    let detail = match (&r.result_key, &r.failure, &r.result) {
        (Some(key), _, Some(res)) => format!(
            "{key} ({} MWh, {} EUR)",
            res.totals.accepted_energy_mwh, res.totals.notional_eur
        ),
        (_, Some(f), _) => f.message.clone(),
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

fn render_summary(report: &Report, system: &System) -> String {
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
    for e in system.bus.archive() {
        *by_type
            .entry(e["detail-type"].as_str().unwrap_or("").to_string())
            .or_default() += 1;
    }
    let _ = writeln!(
        out,
        "\n  {} deliveries, {} simulated; {} result objects, {} Slack messages",
        report.events,
        format_duration(report.simulated),
        report.result_objects,
        report.slack_messages
    );
    let counts: Vec<String> = by_type.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let _ = writeln!(out, "  events on the bus: {}", counts.join(", "));
    for n in system.notifier.sent() {
        let _ = writeln!(out, "  slack: {}", n.text);
    }
    match report.missing().as_slice() {
        [] => out.push_str("  every outcome shown: ACCEPTED, PARTIALLY_ACCEPTED, REJECTED, INVALID, RESULTS_TIMEOUT\n"),
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
