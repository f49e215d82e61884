//! The inspection commands around `energy up`: they open the data dir's database directly, so
//! they work while `energy up` runs (SQLite in WAL mode) and after it stopped.

use energy_core::events::DetailType;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::db::{Db, EventFilter, wall_ms};
use energy_patterns::Pattern;

/// The event schemas of `events-schema/`, built in: (name, schema text).
pub const SCHEMAS: &[(&str, &str)] = &[
    (
        DetailType::Submitted.name(),
        include_str!("../../../events-schema/OrderSubmitted.json"),
    ),
    (
        DetailType::EvaluationDue.name(),
        include_str!("../../../events-schema/OrderEvaluationDue.json"),
    ),
    (
        DetailType::Ready.name(),
        include_str!("../../../events-schema/OrderReady.json"),
    ),
    (
        DetailType::Failed.name(),
        include_str!("../../../events-schema/OrderFailed.json"),
    ),
    (
        DetailType::ResultStored.name(),
        include_str!("../../../events-schema/OrderResultStored.json"),
    ),
    (
        DetailType::Cancelled.name(),
        include_str!("../../../events-schema/OrderCancelled.json"),
    ),
    (
        DetailType::Amended.name(),
        include_str!("../../../events-schema/OrderAmended.json"),
    ),
    (
        DetailType::PreliminaryResult.name(),
        include_str!("../../../events-schema/OrderPreliminaryResult.json"),
    ),
    (
        DetailType::ChangeRefused.name(),
        include_str!("../../../events-schema/OrderChangeRefused.json"),
    ),
    (
        DetailType::ChecksDue.name(),
        include_str!("../../../events-schema/OrderChecksDue.json"),
    ),
    (
        "PostOrdersRequest",
        include_str!("../../../events-schema/api/PostOrdersRequest.json"),
    ),
];

fn open(data_dir: &Path) -> anyhow::Result<Db> {
    if !Db::exists(data_dir) {
        bail!(
            "no database in {} (start `energy up` first, or pass --data-dir)",
            data_dir.display()
        );
    }
    Db::open_beside(data_dir)
}

/// One archived event as a line: sequence, market time, type, order, id.
fn event_line(seq: i64, e: &Value) -> String {
    let replay = e["replay-name"]
        .as_str()
        .map(|r| format!("  (replay {r})"))
        .unwrap_or_default();
    format!(
        "{seq:>7}  {}  {:<46} {:<20} {}{replay}",
        e["time"].as_str().unwrap_or("-"),
        e["detail-type"].as_str().unwrap_or("-"),
        e["detail"]["record_id"].as_str().unwrap_or("-"),
        e["id"].as_str().unwrap_or("-"),
    )
}

/// `energy events list|tail`.
pub async fn events(
    data_dir: &Path,
    filter: EventFilter,
    follow: bool,
    as_json: bool,
    mut out: impl FnMut(&str),
) -> anyhow::Result<()> {
    let db = open(data_dir)?;
    let mut filter = filter;
    loop {
        let batch = db.events(&filter)?;
        for e in &batch {
            if as_json {
                out(&e.body.to_string());
            } else {
                out(&event_line(e.seq, &e.body));
            }
            filter.after_seq = e.seq;
        }
        if !follow {
            return Ok(());
        }
        if batch.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// `energy events replay --since T`: puts archived events back on the bus, routed by today's
/// rules (the template's, the consumers file's and those made through the EventBridge API),
/// each marked with a `replay-name` as EventBridge marks replayed events. Returns the replay's
/// name, how many events and how many deliveries.
pub fn replay(
    data_dir: &Path,
    topology: &crate::topology::Topology,
    filter: EventFilter,
) -> anyhow::Result<(String, usize, usize)> {
    let db = open(data_dir)?;
    let topology = crate::rules::BusResources::load(&db)?.apply_to(topology);
    let name = format!("replay-{}", Timestamp::now().strftime("%Y%m%dT%H%M%S"));
    let (events, deliveries) =
        db.replay(&filter, &name, &|body| topology.deliveries(body), wall_ms())?;
    Ok((name, events, deliveries))
}

/// `energy events test-pattern`: answers like `aws events test-event-pattern`.
pub fn test_pattern(pattern: &str, event: &str) -> anyhow::Result<bool> {
    let pattern = Pattern::parse(&read_arg(pattern)?)
        .map_err(|e| anyhow::anyhow!("InvalidEventPatternException: {e}"))?;
    let event: Value = serde_json::from_str(&read_arg(event)?)
        .map_err(|e| anyhow::anyhow!("the event is not JSON: {e}"))?;
    if let Some(lacks) = lacks_envelope(&event) {
        bail!("InvalidEventPatternException: {lacks}");
    }
    Ok(pattern.matches(&event))
}

/// What an event given to test-event-pattern lacks of the envelope EventBridge requires, if
/// anything.
pub fn lacks_envelope(event: &Value) -> Option<String> {
    const FIELDS: [&str; 7] = [
        "id",
        "account",
        "source",
        "time",
        "region",
        "resources",
        "detail-type",
    ];
    let missing: Vec<&str> = FIELDS
        .into_iter()
        .filter(|k| event.get(k).is_none())
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "the event lacks {} (test-event-pattern needs {})",
            missing.join(", "),
            FIELDS.join(", ")
        )
    })
}

/// Inline JSON, `file://PATH` (as the AWS CLI takes it), `@PATH`, or `-` for standard input.
fn read_arg(arg: &str) -> anyhow::Result<String> {
    if let Some(path) = arg
        .strip_prefix("file://")
        .or_else(|| arg.strip_prefix('@'))
    {
        return std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"));
    }
    if arg == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
        return Ok(s);
    }
    Ok(arg.to_string())
}

/// `energy schemas show NAME`.
pub fn schema(name: &str) -> anyhow::Result<&'static str> {
    SCHEMAS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, s)| *s)
        .ok_or_else(|| {
            let names: Vec<&str> = SCHEMAS.iter().map(|(n, _)| *n).collect();
            anyhow::anyhow!("no schema {name:?}; there are {}", names.join(", "))
        })
}

/// `energy schemas validate FILE`: an event (its schema chosen by its detail-type) or a
/// POST /orders body. Returns the schema's name and every problem, with its path.
pub fn validate(text: &str) -> anyhow::Result<(String, Vec<String>)> {
    let doc: Value = serde_json::from_str(text).context("not JSON")?;
    let name = match doc.get("detail-type").and_then(Value::as_str) {
        Some(t) => t.to_string(),
        None if doc.is_array() => "PostOrdersRequest".to_string(),
        None => bail!(
            "neither an event (no detail-type) nor a POST /orders body (not an array); `energy schemas list` shows the schemas"
        ),
    };
    let schema: Value = serde_json::from_str(schema(&name)?)?;
    let validator = jsonschema::draft4::options()
        .should_validate_formats(true)
        .build(&schema)
        .map_err(|e| anyhow::anyhow!("schema {name}: {e}"))?;
    let errors = validator
        .iter_errors(&doc)
        .map(|e| {
            let at = e.instance_path().to_string();
            format!("{}: {e}", if at.is_empty() { "/" } else { &at })
        })
        .collect();
    Ok((name, errors))
}

/// `energy orders show ID`: the stored record and its events.
pub fn order(data_dir: &Path, record_id: &str) -> anyhow::Result<String> {
    let db = open(data_dir)?;
    // Whatever its TTL: the command shows what the file holds.
    let body = db.order(record_id, i64::MIN)?;
    let mut out = String::new();
    match &body {
        Some(b) => {
            let v: Value = serde_json::from_str(b)?;
            out.push_str(&serde_json::to_string_pretty(&v)?);
            out.push('\n');
        }
        None => out.push_str(&format!(
            "no stored order {record_id} (never accepted, or kept 24 h after it was final and gone)\n"
        )),
    }
    let events = db.events(&EventFilter {
        record_id: Some(record_id.to_string()),
        ..Default::default()
    })?;
    if body.is_none() && events.is_empty() {
        anyhow::bail!("no order {record_id}: neither a stored record nor an event names it");
    }
    if !events.is_empty() {
        out.push_str("\nevents:\n");
        for e in &events {
            out.push_str(&event_line(e.seq, &e.body));
            out.push('\n');
        }
    }
    Ok(out)
}

/// `energy dlq list`.
pub fn dlq_list(data_dir: &Path, as_json: bool) -> anyhow::Result<Vec<String>> {
    let db = open(data_dir)?;
    Ok(db
        .dead_letters()?
        .into_iter()
        .map(|d| {
            if as_json {
                json!({"id": d.id, "rule": d.rule, "target": d.target, "attempts": d.attempts,
                       "dead_at": Timestamp::from_millisecond(d.dead_at).map(|t| t.to_string()).unwrap_or_default(),
                       "error": d.error, "event": d.event})
                .to_string()
            } else {
                format!(
                    "{:>5}  {:<20} → {:<14} {} {:<20} after {} attempts: {}",
                    d.id,
                    d.rule,
                    d.target,
                    d.event["detail-type"].as_str().unwrap_or("-"),
                    d.event["detail"]["record_id"].as_str().unwrap_or("-"),
                    d.attempts,
                    d.error
                )
            }
        })
        .collect())
}

/// `energy dlq redrive [ID...]`.
pub fn dlq_redrive(data_dir: &Path, ids: &[i64]) -> anyhow::Result<usize> {
    let db = open(data_dir)?;
    Ok(db.redrive(ids, wall_ms())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `energy schemas list/show/validate` knows every event Energy publishes, each schema
    /// under its own name.
    #[test]
    fn every_detail_type_has_its_built_in_schema() {
        for kind in DetailType::ALL {
            let (_, text) = SCHEMAS
                .iter()
                .find(|(name, _)| *name == kind.name())
                .unwrap_or_else(|| panic!("{}: not in SCHEMAS", kind.name()));
            let schema: Value = serde_json::from_str(text).unwrap();
            assert_eq!(schema["title"], kind.name());
        }
        assert_eq!(
            SCHEMAS.len(),
            DetailType::ALL.len() + 1,
            "the events and POST /orders"
        );
    }
}
