//! The orders page and one order's page.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use energy_core::calendar::MarketRules;
use energy_core::lifecycle::{OrderRecord, OrderState};
use energy_core::market::{Market, Zone};
use energy_core::ports::Clock;
use energy_core::result::OrderResult;
use jiff::Timestamp;
use serde::Serialize;

use super::Console;
use super::html::{
    Nav, badge, enc, esc, failed, fragment, layout, live, not_found, select, time, wall,
};
use crate::db::EventFilter;
use crate::db::orders::OrderFilter;

type Con = State<Arc<Console>>;
type Params = Query<HashMap<String, String>>;

/// Most orders a listing shows (the count says how many match).
const LISTED: usize = 500;

/// A serialised enum's name (`PENDING`, `ACCEPTED`).
pub fn name<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

const STATES: [OrderState; 8] = [
    OrderState::Received,
    OrderState::Pending,
    OrderState::Ready,
    OrderState::Stored,
    OrderState::Failed,
    OrderState::Notified,
    OrderState::Cancelling,
    OrderState::Cancelled,
];

/// The filter a query asks for, each value in its canonical spelling (`stored` is `STORED`,
/// `de-lu` is `DE-LU`), or what is wrong with one.
fn filter(q: &HashMap<String, String>) -> Result<OrderFilter, String> {
    let get = |k: &str| q.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let pick = |k: &str, what: &str, known: Vec<String>| -> Result<Option<String>, String> {
        let Some(v) = get(k) else { return Ok(None) };
        known
            .into_iter()
            .find(|x| x.eq_ignore_ascii_case(v))
            .map(Some)
            .ok_or_else(|| format!("{what} {v:?} is not one this console knows"))
    };
    let day = match get("day") {
        None => None,
        Some(d) => Some(
            d.parse::<jiff::civil::Date>()
                .map_err(|_| format!("delivery day {d:?} is not a date (YYYY-MM-DD)"))?
                .to_string(),
        ),
    };
    Ok(OrderFilter {
        state: pick("state", "state", STATES.iter().map(name).collect())?,
        market: pick(
            "market",
            "market",
            Market::ALL.iter().map(|m| m.to_string()).collect(),
        )?,
        zone: pick(
            "zone",
            "zone",
            Zone::ALL.iter().map(|z| z.to_string()).collect(),
        )?,
        day,
        limit: LISTED,
    })
}

fn query_string(q: &HashMap<String, String>) -> String {
    let mut keys: Vec<&String> = q.keys().collect();
    keys.sort();
    keys.iter()
        .filter(|k| !q[**k].is_empty())
        .map(|k| format!("{}={}", enc(k), enc(&q[*k])))
        .collect::<Vec<_>>()
        .join("&")
}

/// `/console`: filters, then the live list.
pub async fn page(State(c): Con, Query(q): Params) -> Response {
    let days = match c.shared.db.run(|db| db.delivery_days()).await {
        Ok(d) => d,
        Err(e) => return failed(Nav::Orders, e),
    };
    let f = match filter(&q) {
        Ok(f) => f,
        Err(e) => return super::html::bad_request(Nav::Orders, &e),
    };
    let states: Vec<String> = STATES.iter().map(name).collect();
    let markets: Vec<String> = Market::ALL.iter().map(|m| m.to_string()).collect();
    let zones: Vec<String> = Zone::ALL.iter().map(|z| z.to_string()).collect();
    let live_html = match list(&c, &f).await {
        Ok(html) => html,
        Err(e) => return failed(Nav::Orders, e),
    };
    let body = format!(
        "<h1>Orders</h1>\
         <form class=\"filters\" method=\"get\" action=\"/console\">{}{}{}{}<button type=\"submit\">Filter</button> <a href=\"/console\">Clear</a></form>{}",
        select("state", "State", &states, f.state.as_deref()),
        select("market", "Market", &markets, f.market.as_deref()),
        select("zone", "Zone", &zones, f.zone.as_deref()),
        select("day", "Delivery day", &days, f.day.as_deref()),
        live(
            "orders",
            &format!("/console/live/orders?{}", query_string(&q)),
            &live_html
        ),
    );
    layout("Orders", Nav::Orders, &body)
}

pub async fn live_list(State(c): Con, Query(q): Params) -> Response {
    let f = match filter(&q) {
        Ok(f) => f,
        Err(e) => return fragment(format!("<p class=\"error\">{}</p>", esc(&e))),
    };
    match list(&c, &f).await {
        Ok(html) => fragment(html),
        Err(e) => fragment(format!("<p class=\"error\">{}</p>", esc(&e.to_string()))),
    }
}

/// The counts per state, then the orders the filter selects.
async fn list(c: &Console, f: &OrderFilter) -> Result<String, crate::db::DbError> {
    let f = f.clone();
    let now = c.shared.clock.now().as_second();
    let crate::db::orders::OrderList {
        by_state: counts,
        total,
        bodies,
    } = c.shared.db.run(move |db| db.list_orders(&f, now)).await?;
    let mut out = String::from(
        "<p class=\"note\">All orders, per state:</p><ul class=\"counts\" aria-label=\"All orders per state\">",
    );
    let all: i64 = counts.iter().map(|(_, n)| n).sum();
    let _ = write!(
        out,
        "<li><a href=\"/console\">all <b data-count=\"all\">{all}</b></a></li>"
    );
    for state in STATES.iter().map(name) {
        let n = counts
            .iter()
            .find(|(s, _)| *s == state)
            .map_or(0, |(_, n)| *n);
        let _ = write!(
            out,
            "<li><a href=\"/console?state={s}\">{} <b data-count=\"{s}\">{n}</b></a></li>",
            badge(&state),
            s = esc(&state)
        );
    }
    out.push_str("</ul>");
    let _ = write!(
        out,
        "<p class=\"note\">Listed: {} of the {total} orders the filter selects{}</p>",
        bodies.len(),
        if total as usize > bodies.len() {
            " (the newest; narrow the filter to see others)"
        } else {
            ""
        }
    );
    out.push_str(
        "<div class=\"table-wrap\"><table id=\"order-list\"><thead><tr><th scope=\"col\">Order</th><th scope=\"col\">Market</th><th scope=\"col\">Delivery day</th><th scope=\"col\">Zone</th><th scope=\"col\">Side</th><th scope=\"col\">State</th><th scope=\"col\">Checks</th><th scope=\"col\">Outcome</th></tr></thead><tbody>",
    );
    for body in &bodies {
        let Ok(r) = serde_json::from_str::<OrderRecord>(body) else {
            continue;
        };
        let id = r.order.record_id.to_string();
        let _ = write!(
            out,
            "<tr data-order=\"{ide}\"><td><a href=\"/console/orders/{idu}\">{ide}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            r.order.market,
            r.order.delivery_date,
            r.order.zone,
            name(&r.order.side),
            badge(&name(&r.state)),
            r.checks(),
            esc(&outcome(&r)),
            ide = esc(&id),
            idu = enc(&id),
        );
    }
    out.push_str("</tbody></table></div>");
    Ok(out)
}

/// What came of an order, in a few words.
fn outcome(r: &OrderRecord) -> String {
    if let Some(result) = &r.result {
        return name(&result.outcome);
    }
    if let Some(f) = &r.failure {
        return format!("{}: {}", name(&f.reason), f.message);
    }
    if let Some(p) = &r.preliminary {
        let status = if p.withdrawn_at.is_some() {
            "withdrawn"
        } else {
            "standing"
        };
        return format!("preliminary {} ({status})", name(&p.result.outcome));
    }
    "–".into()
}

/// `/console/orders/{id}`.
pub async fn order_page(State(c): Con, Path(id): Path<String>) -> Response {
    let live_html = match order_live(&c, &id).await {
        Ok(Some(html)) => html,
        Ok(None) => {
            return not_found(
                Nav::Orders,
                &format!("no order {id} (never posted, or past its 24-hour TTL)"),
            );
        }
        Err(e) => return failed(Nav::Orders, e),
    };
    let body = format!(
        "<p><a href=\"/console\">← Orders</a></p><h1>Order <code>{ide}</code></h1>\
         <p role=\"status\" id=\"action-status\" tabindex=\"-1\"></p>{}",
        live(
            "order",
            &format!("/console/live/orders/{}", enc(&id)),
            &live_html
        ),
        ide = esc(&id),
    );
    layout(&format!("Order {id}"), Nav::Orders, &body)
}

pub async fn live_order(State(c): Con, Path(id): Path<String>) -> Response {
    match order_live(&c, &id).await {
        Ok(Some(html)) => fragment(html),
        Ok(None) => fragment(format!("<p>no order {}</p>", esc(&id))),
        Err(e) => fragment(format!("<p class=\"error\">{}</p>", esc(&e.to_string()))),
    }
}

/// Everything about one order that changes: its state, result, timeline and actions.
async fn order_live(c: &Console, id: &str) -> Result<Option<String>, crate::db::DbError> {
    let now = c.shared.clock.now();
    let key = id.to_string();
    let (body, events, attempts, dead) = c
        .shared
        .db
        .run(move |db| {
            let body = db.order(&key, now.as_second())?;
            let filter = EventFilter {
                record_id: Some(key.clone()),
                ..EventFilter::default()
            };
            let events = db.events(&filter)?;
            let attempts = db.attempts_of(&key)?;
            let dead: Vec<_> = db
                .dead_letters()?
                .into_iter()
                .filter(|d| d.event["detail"]["record_id"] == key.as_str())
                .collect();
            Ok::<_, crate::db::DbError>((body, events, attempts, dead))
        })
        .await?;
    let Some(body) = body else { return Ok(None) };
    let Ok(r) = serde_json::from_str::<OrderRecord>(&body) else {
        return Ok(Some(format!(
            "<p class=\"error\">the stored record does not read</p><pre>{}</pre>",
            esc(&body)
        )));
    };
    let mut out = String::new();
    summary(&mut out, &r);
    actions(&mut out, &r, now);
    // A decoupled zone's final result is cleared on its own market; its curve is that book.
    let alone = c.sim.is_decoupled(r.order.zone);
    if let Some(result) = &r.result {
        out.push_str("<h2>Result</h2>");
        result_table(&mut out, result, &r, alone);
    } else if let Some(p) = &r.preliminary {
        out.push_str("<h2>Preliminary result</h2>");
        result_table(&mut out, &p.result, &r, false);
    }
    out.push_str("<h2>Timeline</h2>");
    let _ = write!(
        out,
        "<div class=\"table-wrap\"><table id=\"timeline\"><thead><tr><th scope=\"col\">Market time (UTC)</th><th scope=\"col\">Wall time (UTC, this machine)</th><th scope=\"col\">Event (source)</th><th scope=\"col\">Handled by</th><th scope=\"col\">What it did</th></tr></thead><tbody>"
    );
    for e in &events {
        let event_id = e.body["id"].as_str().unwrap_or_default();
        let detail_type = e.body["detail-type"].as_str().unwrap_or_default();
        let replay = e.body["replay-name"]
            .as_str()
            .map(|n| format!(" <small>(replay {})</small>", esc(n)))
            .unwrap_or_default();
        let mine: Vec<_> = attempts.iter().filter(|a| a.event_id == event_id).collect();
        let rows = mine.len().max(1);
        let _ = write!(
            out,
            "<tr data-event=\"{et}\"><td rowspan=\"{rows}\">{}</td><td rowspan=\"{rows}\">{}</td><td rowspan=\"{rows}\"><b>{et}</b> <small>({})</small>{replay}</td>",
            esc(e.body["time"].as_str().unwrap_or_default()),
            wall(e.published_at),
            esc(e.body["source"].as_str().unwrap_or_default()),
            et = esc(detail_type),
        );
        if mine.is_empty() {
            out.push_str(
                "<td>–</td><td>no delivery: no rule takes it, or it is still queued</td></tr>",
            );
        }
        for (i, a) in mine.iter().enumerate() {
            if i > 0 {
                out.push_str("<tr>");
            }
            let what = if a.dead {
                "dead letter"
            } else if a.ok {
                "ok"
            } else {
                "failed, retried"
            };
            let _ = write!(
                out,
                "<td>{} → {} <small>attempt {} at {}</small></td><td><span class=\"result {}\">{what}</span> {}</td></tr>",
                esc(&a.rule),
                esc(&a.target),
                a.attempt,
                esc(&a.market_at),
                if a.ok { "ok" } else { "bad" },
                esc(&a.summary),
            );
        }
    }
    out.push_str("</tbody></table></div>");
    if !dead.is_empty() {
        let _ = write!(
            out,
            "<p class=\"error\">{} of this order's deliveries are dead letters: <a href=\"/console/bus#dead-letters\">redrive them on the bus page</a>.</p>",
            dead.len()
        );
    }
    let _ = write!(
        out,
        "<h2>Body</h2><pre id=\"body\">{}</pre>",
        esc(&serde_json::to_string_pretty(&r.order).unwrap_or_default())
    );
    Ok(Some(out))
}

fn summary(out: &mut String, r: &OrderRecord) {
    let o = &r.order;
    let _ = write!(
        out,
        "<dl class=\"facts\"><dt>State</dt><dd id=\"state\">{}</dd><dt>Market</dt><dd>{}</dd><dt>Delivery day</dt><dd>{}</dd><dt>Zone</dt><dd>{}</dd><dt>Side</dt><dd>{}</dd><dt>Portfolio</dt><dd>{}</dd><dt>Checks</dt><dd>{}</dd><dt>Submitted</dt><dd>{}</dd><dt>Updated</dt><dd>{}</dd><dt>Outcome</dt><dd id=\"outcome\">{}</dd>",
        badge(&name(&r.state)),
        o.market,
        o.delivery_date,
        o.zone,
        name(&o.side),
        esc(&o.portfolio),
        r.checks(),
        time(r.submitted_at),
        time(r.updated_at),
        esc(&outcome(r)),
    );
    if let Some(f) = &r.failure {
        let _ = write!(
            out,
            "<dt>Failure</dt><dd id=\"failure\"><b>{}</b>: {} <small>({})</small></dd>",
            esc(&name(&f.reason)),
            esc(&f.message),
            time(f.failed_at)
        );
    }
    if let Some(key) = &r.result_key {
        let _ = write!(
            out,
            "<dt>Result object</dt><dd><code id=\"result-key\">{}</code></dd>",
            esc(key)
        );
    }
    out.push_str("</dl>");
}

/// Cancel and amend, while the gate is open and the order is not final.
fn actions(out: &mut String, r: &OrderRecord, now: Timestamp) {
    let gate = MarketRules::default().gate_closure(r.order.auction()).ok();
    let open = gate.is_some_and(|g| now < g);
    let changeable =
        open && matches!(
            r.state,
            OrderState::Received | OrderState::Pending | OrderState::Failed
        ) && !r.state.is_final();
    let Some(gate) = gate else { return };
    if !changeable {
        let _ = write!(
            out,
            "<p class=\"note\">Gate {}: {}.</p>",
            time(gate),
            if open {
                "open, but the order can no longer be changed"
            } else {
                "closed; the order can no longer be withdrawn or amended"
            }
        );
        return;
    }
    let id = enc(&r.order.record_id.to_string());
    let body = serde_json::to_string_pretty(&r.order).unwrap_or_default();
    let _ = write!(
        out,
        "<div class=\"actions\"><p class=\"note\">Gate closes {}.</p>\
         <button type=\"button\" id=\"cancel\" data-cancel=\"/orders/{id}\">Withdraw order</button>\
         <details><summary id=\"amend-open\">Amend</summary><form id=\"amend\" data-amend=\"/orders/{id}\">\
         <label for=\"amend-body\">New body (one order, as POST takes it)</label>\
         <textarea id=\"amend-body\" name=\"body\" rows=\"12\" spellcheck=\"false\">{}</textarea>\
         <button type=\"submit\">Send amendment</button></form></details></div>",
        time(gate),
        esc(&body),
    );
}

/// Per MTU: offered, accepted, clearing price (table and chart), each MTU linked to its curve.
fn result_table(out: &mut String, result: &OrderResult, r: &OrderRecord, alone: bool) {
    let o = &r.order;
    let _ = write!(
        out,
        "<p>Outcome <b id=\"result-outcome\">{}</b>{}; accepted {} MWh of {} MWh offered.</p>",
        name(&result.outcome),
        result
            .rejection_reason
            .as_ref()
            .map(|r| format!(" ({})", esc(r)))
            .unwrap_or_default(),
        result.totals.accepted_energy_mwh,
        result.totals.offered_energy_mwh,
    );
    out.push_str("<div class=\"table-wrap\"><table id=\"mtus\"><thead><tr><th scope=\"col\">MTU</th><th scope=\"col\">Offered MW</th><th scope=\"col\">Accepted MW</th><th scope=\"col\">Clearing price EUR/MWh</th><th scope=\"col\">Curve</th></tr></thead><tbody>");
    for m in &result.mtus {
        let price = m
            .clearing_price
            .map_or_else(|| "no price".to_string(), |p| p.to_string());
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{price}</td><td><a href=\"/console/auction?market={}&amp;day={}&amp;zone={}&amp;mtu={}{}\">curve</a></td></tr>",
            time(m.mtu_start),
            m.offered_quantity,
            m.accepted_quantity,
            o.market,
            o.delivery_date,
            enc(o.zone.as_str()),
            enc(&m.mtu_start.to_string()),
            if alone { "&amp;alone=true" } else { "" },
        );
    }
    out.push_str("</tbody></table></div>");
    out.push_str(&mtu_chart(result));
}

/// Offered and accepted MW per MTU as bars, with the clearing price written on each.
fn mtu_chart(result: &OrderResult) -> String {
    let n = result.mtus.len().max(1) as f64;
    let max = result
        .mtus
        .iter()
        .map(|m| m.offered_quantity.0.max(m.accepted_quantity.0))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let (w, h, left, bottom) = (640.0, 220.0, 48.0, 36.0);
    let slot = (w - left - 8.0) / n;
    let bar = (slot * 0.35).min(40.0);
    let y = |lots: i64| h - bottom - (lots as f64 / max) * (h - bottom - 16.0);
    let mut svg = format!(
        "<figure><svg class=\"chart\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-labelledby=\"mtu-chart-title\"><title id=\"mtu-chart-title\">Offered and accepted MW per MTU</title>"
    );
    let _ = write!(
        svg,
        "<line x1=\"{left}\" y1=\"{b}\" x2=\"{w}\" y2=\"{b}\" class=\"axis\"/><text x=\"4\" y=\"14\" class=\"label\">MW</text><text x=\"{left}\" y=\"{top}\" class=\"label\">{}</text>",
        energy_core::money::Lots(max as i64),
        b = h - bottom,
        top = 12.0,
    );
    // At most about twelve time labels; prices only when each bar has room for one.
    let every = result.mtus.len().div_ceil(12).max(1);
    let prices = result.mtus.len() <= 24;
    for (i, m) in result.mtus.iter().enumerate() {
        let x = left + slot * i as f64 + slot / 2.0 - bar;
        let (yo, ya) = (y(m.offered_quantity.0), y(m.accepted_quantity.0));
        let price = m
            .clearing_price
            .map_or_else(|| "–".into(), |p| format!("{p} €"));
        let (tick, price) = (
            if i % every == 0 {
                m.mtu_start.strftime("%H:%M").to_string()
            } else {
                String::new()
            },
            if prices { price } else { String::new() },
        );
        let _ = write!(
            svg,
            "<rect class=\"offered\" x=\"{x:.1}\" y=\"{yo:.1}\" width=\"{bar:.1}\" height=\"{:.1}\"><title>offered {} MW</title></rect>\
             <rect class=\"accepted\" x=\"{:.1}\" y=\"{ya:.1}\" width=\"{bar:.1}\" height=\"{:.1}\"><title>accepted {} MW</title></rect>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"tick\" text-anchor=\"middle\">{tick}</text>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"tick\" text-anchor=\"middle\">{price}</text>",
            h - bottom - yo,
            m.offered_quantity,
            x + bar,
            h - bottom - ya,
            m.accepted_quantity,
            x + bar,
            h - bottom + 14.0,
            x + bar,
            h - bottom + 28.0,
        );
    }
    svg.push_str("</svg><figcaption><span class=\"key offered\">offered</span> <span class=\"key accepted\">accepted</span> MW per MTU (UTC); the clearing prices are in the table</figcaption></figure>");
    svg
}
