//! The bus page: the rules with their patterns and targets (the template's, the consumers
//! file's and those made through the EventBridge API), a live tail of the events, the pending
//! schedules, the dead letters with redrive, and the schemas.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};

use super::Console;
use super::html::{
    Nav, bad_request, enc, esc, failed, fragment, layout, live, not_found, time, wall,
};
use crate::db::wall_ms;

type Con = State<Arc<Console>>;
type Params = Query<HashMap<String, String>>;

/// Most events the tail and schedules the list show.
const TAIL: usize = 50;

pub async fn page(State(c): Con, Query(q): Params) -> Response {
    let topology = c.shared.topology();
    let mut body = String::from("<h1>Bus</h1><h2 id=\"rules\">Rules</h2>");
    body.push_str("<div class=\"table-wrap\"><table id=\"rule-list\"><thead><tr><th scope=\"col\">Rule</th><th scope=\"col\">From</th><th scope=\"col\">State</th><th scope=\"col\">Pattern</th><th scope=\"col\">Targets</th></tr></thead><tbody>");
    for r in &topology.rules {
        let targets: Vec<String> = r
            .targets
            .iter()
            .map(|t| {
                // The retries that apply: a function's are Lambda's (its EventInvokeConfig).
                let (retries, age) = topology
                    .delivery(&r.name, &t.id)
                    .map_or((t.policy.max_retries, t.policy.max_age), |d| {
                        (d.max_retries, d.max_age)
                    });
                format!(
                    "{} → {} <small>(retries {retries}, max age {}s)</small>",
                    esc(&t.id),
                    esc(&t.target.describe()),
                    age.as_secs()
                )
            })
            .collect();
        let _ = write!(
            body,
            "<tr data-rule=\"{n}\"><th scope=\"row\">{n}</th><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
            esc(&r.origin),
            if r.enabled { "enabled" } else { "disabled" },
            esc(&r.pattern_json.to_string()),
            if targets.is_empty() {
                "none".into()
            } else {
                targets.join("<br>")
            },
            n = esc(&r.name),
        );
    }
    if let Some(s) = &topology.sweep {
        let _ = write!(
            body,
            "<tr><th scope=\"row\">{}</th><td>template.yaml</td><td>enabled</td><td><code>rate({} s) market time</code></td><td>{}</td></tr>",
            esc(&s.name),
            s.every.as_secs(),
            s.target.name()
        );
    }
    body.push_str("</tbody></table></div>");
    let detail_type = q.get("type").cloned().unwrap_or_default();
    let types: Vec<String> = c
        .shared
        .base
        .registry
        .schemas
        .iter()
        .filter_map(|s| s.name.rsplit('@').next().map(String::from))
        .collect();
    let _ = write!(
        body,
        "<h2 id=\"tail\">Events</h2><form class=\"filters\" method=\"get\" action=\"/console/bus\">{}<button type=\"submit\">Filter</button></form><section id=\"events\" aria-live=\"off\" data-live=\"/console/live/tail?type={}\">{}</section>",
        super::html::select(
            "type",
            "Detail type",
            &types,
            Some(detail_type.as_str()).filter(|t| !t.is_empty())
        ),
        enc(&detail_type),
        tail(&c, &detail_type).await,
    );
    body.push_str(&schedules(&c).await);
    let redriven = q
        .get("redriven")
        .map(|n| {
            format!(
                "<p role=\"status\" id=\"redriven\">{} dead letters queued again.</p>",
                esc(n)
            )
        })
        .unwrap_or_default();
    let _ = write!(
        body,
        "<h2 id=\"dead-letters\">Dead letters</h2>{redriven}{}",
        live("dlq", "/console/live/dead-letters", &dead_letters(&c).await)
    );
    body.push_str("<h2 id=\"schemas\">Schemas</h2><ul>");
    for s in &c.shared.base.registry.schemas {
        let _ = write!(
            body,
            "<li><a href=\"/console/schemas/{}\">{}</a> <small>{}</small></li>",
            enc(&s.name),
            esc(&s.name),
            esc(&s.description)
        );
    }
    let _ = write!(
        body,
        "</ul><p class=\"note\">The same through the AWS APIs: <code>aws events list-rules --event-bus-name {bus}</code>, <code>aws schemas list-schemas --registry-name {reg}</code>, <code>aws scheduler list-schedules --group-name {group}</code> with <code>--endpoint-url</code> this server.</p>",
        bus = esc(&c.shared.base.bus_name),
        reg = esc(&c.shared.base.registry.name),
        group = esc(&c.shared.base.schedule_group),
    );
    layout("Bus", Nav::Bus, &body)
}

pub async fn live_tail(State(c): Con, Query(q): Params) -> Response {
    let detail_type = q.get("type").cloned().unwrap_or_default();
    fragment(tail(&c, &detail_type).await)
}

/// The latest events, newest first.
async fn tail(c: &Console, detail_type: &str) -> String {
    let detail_type = Some(detail_type.to_string()).filter(|t| !t.is_empty());
    let events = c
        .shared
        .db
        .run(move |db| db.latest_events(detail_type.as_deref(), TAIL))
        .await;
    let events = match events {
        Ok(e) => e,
        Err(e) => return format!("<p class=\"error\">{}</p>", esc(&e.to_string())),
    };
    let mut out = format!(
        "<p class=\"note\">The latest {} events, newest first.</p><div class=\"table-wrap\"><table id=\"event-tail\"><thead><tr><th scope=\"col\">#</th><th scope=\"col\">Market time (UTC)</th><th scope=\"col\">Wall time (UTC)</th><th scope=\"col\">Source</th><th scope=\"col\">Detail type</th><th scope=\"col\">Order</th></tr></thead><tbody>",
        events.len()
    );
    for e in &events {
        let order = e.body["detail"]["record_id"].as_str().map_or_else(
            || "–".to_string(),
            |id| format!("<a href=\"/console/orders/{}\">{}</a>", enc(id), esc(id)),
        );
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{order}</td></tr>",
            e.seq,
            esc(e.body["time"].as_str().unwrap_or_default()),
            wall(e.published_at),
            esc(e.body["source"].as_str().unwrap_or_default()),
            esc(e.body["detail-type"].as_str().unwrap_or_default()),
        );
    }
    out.push_str("</tbody></table></div>");
    out
}

async fn schedules(c: &Console) -> String {
    let listed = c
        .shared
        .db
        .run(|db| {
            Ok::<_, crate::db::DbError>((
                db.list_schedules("", None, TAIL)?,
                db.pending_schedules()?,
            ))
        })
        .await;
    let (listed, total) = match listed {
        Ok(l) => l,
        Err(e) => return format!("<p class=\"error\">{}</p>", esc(&e.to_string())),
    };
    let mut out = format!(
        "<h2 id=\"schedules\">Pending schedules</h2><p class=\"note\">{total} one-time schedules in group {}{}.</p><div class=\"table-wrap\"><table id=\"schedule-list\"><thead><tr><th scope=\"col\">Schedule</th><th scope=\"col\">At (market time)</th></tr></thead><tbody>",
        esc(&c.shared.base.schedule_group),
        if total as usize > listed.len() {
            format!(", the first {} by name", listed.len())
        } else {
            String::new()
        }
    );
    for (name, at, _) in &listed {
        let at = jiff::Timestamp::from_millisecond(*at)
            .map(time)
            .unwrap_or_default();
        let _ = write!(out, "<tr><td>{}</td><td>{at}</td></tr>", esc(name));
    }
    out.push_str("</tbody></table></div>");
    out
}

pub async fn live_dead_letters(State(c): Con) -> Response {
    fragment(dead_letters(&c).await)
}

async fn dead_letters(c: &Console) -> String {
    let dead = match c.shared.db.run(|db| db.dead_letters()).await {
        Ok(d) => d,
        Err(e) => return format!("<p class=\"error\">{}</p>", esc(&e.to_string())),
    };
    if dead.is_empty() {
        return "<p id=\"no-dead-letters\">No dead letters.</p>".into();
    }
    let mut out = format!(
        "<form method=\"post\" action=\"/console/dlq/redrive\"><input type=\"hidden\" name=\"all\" value=\"yes\"><button type=\"submit\" id=\"redrive-all\">Redrive all {}</button></form><div class=\"table-wrap\"><table id=\"dead-letter-list\"><thead><tr><th scope=\"col\">#</th><th scope=\"col\">Rule → target</th><th scope=\"col\">Event</th><th scope=\"col\">Attempts</th><th scope=\"col\">Error</th><th scope=\"col\"></th></tr></thead><tbody>",
        dead.len()
    );
    for d in &dead {
        let _ = write!(
            out,
            "<tr data-dead=\"{id}\"><td>{id}</td><td>{} → {}</td><td>{} <small>{}</small></td><td>{}</td><td>{}</td><td><form method=\"post\" action=\"/console/dlq/redrive\"><input type=\"hidden\" name=\"id\" value=\"{id}\"><button type=\"submit\">Redrive</button></form></td></tr>",
            esc(&d.rule),
            esc(&d.target),
            esc(d.event["detail-type"].as_str().unwrap_or_default()),
            esc(d.event["detail"]["record_id"].as_str().unwrap_or_default()),
            d.attempts,
            esc(&d.error),
            id = d.id,
        );
    }
    out.push_str("</tbody></table></div>");
    out
}

/// The redrive form: `id=N` (once or more) redrives those dead letters, `all=yes` every one;
/// anything else is refused.
pub async fn redrive(State(c): Con, body: axum::body::Bytes) -> Response {
    let text = String::from_utf8_lossy(&body);
    let mut ids = Vec::new();
    let mut all = false;
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("id", v)) => match v.parse::<i64>() {
                Ok(id) => ids.push(id),
                Err(_) => {
                    return bad_request(
                        Nav::Bus,
                        &format!("id {v:?} is not a dead letter's number"),
                    );
                }
            },
            Some(("all", "yes")) => all = true,
            _ => {
                return bad_request(
                    Nav::Bus,
                    &format!("{pair:?}: the form takes id=N or all=yes"),
                );
            }
        }
    }
    if ids.is_empty() != all {
        return bad_request(
            Nav::Bus,
            "name the dead letters (id=N) or ask for all of them (all=yes)",
        );
    }
    let asked = ids.len();
    match c.shared.db.run(move |db| db.redrive(&ids, wall_ms())).await {
        Ok(n) if all || n == asked => {
            c.shared.deliveries.notify_one();
            Redirect::to(&format!("/console/bus?redriven={n}#dead-letters")).into_response()
        }
        Ok(n) => {
            c.shared.deliveries.notify_one();
            bad_request(
                Nav::Bus,
                &format!(
                    "{n} of the {asked} dead letters named were queued again; the others are not dead letters (redriven already, or never)"
                ),
            )
        }
        Err(e) => failed(Nav::Bus, e),
    }
}

/// One schema of the registry, as its file.
pub async fn schema(State(c): Con, Path(name): Path<String>) -> Response {
    let Some(s) = c
        .shared
        .base
        .registry
        .schemas
        .iter()
        .find(|s| s.name == name)
    else {
        return not_found(Nav::Bus, &format!("no schema {name} in the registry"));
    };
    let pretty = serde_json::from_str::<serde_json::Value>(&s.content)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| s.content.clone());
    layout(
        &s.name,
        Nav::Bus,
        &format!(
            "<p><a href=\"/console/bus#schemas\">← Bus</a></p><h1>{}</h1><p>{} · registry {} · version 1</p><pre>{}</pre>",
            esc(&s.name),
            esc(&s.description),
            esc(&c.shared.base.registry.name),
            esc(&pretty)
        ),
    )
}
