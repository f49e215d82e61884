//! The event archive: every event published, in order; publishing queues its deliveries in the
//! same transaction.

use rusqlite::params;
use serde_json::Value;

use super::{Archived, EventFilter};
use super::{Cached, Context, Db, DbResult, Route, atomically, json_column};

impl Db {
    /// Archives each event and queues its deliveries, all or none.
    pub fn publish_all(&self, events: &[(NewEvent, Vec<Route>)], now_ms: i64) -> DbResult<()> {
        atomically(&self.conn(), "publishing", |tx| {
            for (event, routes) in events {
                insert_new_event(tx, event, routes, now_ms)?;
            }
            Ok(())
        })
    }

    /// Events, oldest first.
    pub fn events(&self, f: &EventFilter) -> DbResult<Vec<Archived>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(events_sql(f)).ctx("reading events")?;
        let limit = f.limit.map_or(-1, |l| l as i64);
        let rows = stmt
            .query_map(
                params![
                    f.after_seq,
                    f.record_id,
                    f.detail_type,
                    f.since_time,
                    limit,
                    f.until_time
                ],
                archived,
            )
            .ctx("reading events")?;
        rows.collect::<Result<_, _>>().ctx("reading events")
    }
}

impl Db {
    /// The latest `limit` events (of `detail_type`, if given), newest first.
    pub fn latest_events(
        &self,
        detail_type: Option<&str>,
        limit: usize,
    ) -> DbResult<Vec<Archived>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(latest_events_sql(detail_type))
            .ctx("reading events")?;
        let rows = stmt
            .query_map(params![detail_type, limit as i64], archived)
            .ctx("reading events")?;
        rows.collect::<Result<_, _>>().ctx("reading events")
    }

    /// Puts the archived events `f` selects back on the bus, each marked with `replay-name`
    /// as EventBridge marks replayed events and queued for the deliveries `routes` gives it,
    /// in one transaction. Events that were themselves replays are not replayed again, and an
    /// event no rule takes is not archived again. Returns (events replayed, deliveries queued).
    pub fn replay(
        &self,
        f: &EventFilter,
        name: &str,
        routes: &dyn Fn(&Value) -> Vec<Route>,
        now_ms: i64,
    ) -> DbResult<(usize, usize)> {
        let events = self.events(f)?;
        atomically(&self.conn(), "replaying", |tx| {
            let (mut replayed, mut deliveries) = (0, 0);
            for e in events {
                if e.body.get("replay-name").is_some() {
                    continue;
                }
                let mut body = e.body;
                body["replay-name"] = Value::String(name.to_string());
                let routes = routes(&body);
                if routes.is_empty() {
                    // No rule takes it: nothing to deliver, nothing to archive again.
                    continue;
                }
                deliveries += routes.len();
                replayed += 1;
                insert_event(tx, &body, &routes, now_ms)?;
            }
            Ok((replayed, deliveries))
        })
    }

    /// How many events the archive holds (replays left out) and their size in bytes.
    pub fn archive_size(&self) -> DbResult<(i64, i64)> {
        self.conn()
            .row(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(body)), 0) FROM events
                 WHERE source != 'aws.events' AND json_extract(body, '$.\"replay-name\"') IS NULL",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .ctx("reading the archive's size")
    }
}

/// The archive read of [`Db::events`], by the filter's most selective column: SQLite uses an
/// index only for a column compared bare, so a filter written `?2 IS NULL OR record_id = ?2`
/// read every event archived, whatever it asked for. The other columns stay optional.
macro_rules! events_where {
    ($first:literal) => {
        concat!(
            "SELECT seq, published_at, body FROM events WHERE ",
            $first,
            " AND seq > ?1
               AND (?2 IS NULL OR record_id = ?2)
               AND (?3 IS NULL OR detail_type = ?3)
               AND (?4 IS NULL OR time >= ?4)
               AND (?6 IS NULL OR time < ?6)
             ORDER BY seq LIMIT ?5"
        )
    };
}

/// The statement [`Db::events`] runs for `f`: through the order's index, the type's, or the
/// archive's own order.
pub(super) fn events_sql(f: &EventFilter) -> &'static str {
    match (&f.record_id, &f.detail_type) {
        (Some(_), _) => events_where!("record_id = ?2"),
        (None, Some(_)) => events_where!("detail_type = ?3"),
        (None, None) => events_where!("1"),
    }
}

/// The statement [`Db::latest_events`] runs: through the type's index when it has one.
pub(super) fn latest_events_sql(detail_type: Option<&str>) -> &'static str {
    match detail_type {
        Some(_) => {
            "SELECT seq, published_at, body FROM events
             WHERE detail_type = ?1 ORDER BY seq DESC LIMIT ?2"
        }
        None => {
            "SELECT seq, published_at, body FROM events
             WHERE ?1 IS NULL ORDER BY seq DESC LIMIT ?2"
        }
    }
}

/// An archived event from a `seq, published_at, body` row.
fn archived(r: &rusqlite::Row<'_>) -> rusqlite::Result<Archived> {
    let body: String = r.get(2)?;
    Ok(Archived {
        seq: r.get(0)?,
        published_at: r.get(1)?,
        body: json_column(&body, 2)?,
    })
}

/// An event as the archive stores it: the columns it is found by, and its text. Made where the
/// event is published, so the database thread, which every step of the stack waits on, does not
/// spend its time serialising events.
pub struct NewEvent {
    id: String,
    time: String,
    source: String,
    detail_type: String,
    record_id: Option<String>,
    body: String,
}

impl NewEvent {
    pub fn of(event: &Value) -> NewEvent {
        let s = |k: &str| event[k].as_str().unwrap_or_default().to_string();
        NewEvent {
            id: s("id"),
            time: s("time"),
            source: s("source"),
            detail_type: s("detail-type"),
            record_id: event["detail"]["record_id"].as_str().map(String::from),
            body: event.to_string(),
        }
    }
}

/// Archives `event` and queues one delivery per route, inside `tx`.
pub(super) fn insert_event(
    tx: &rusqlite::Connection,
    event: &Value,
    routes: &[Route],
    now_ms: i64,
) -> DbResult<i64> {
    insert_new_event(tx, &NewEvent::of(event), routes, now_ms)
}

fn insert_new_event(
    tx: &rusqlite::Connection,
    event: &NewEvent,
    routes: &[Route],
    now_ms: i64,
) -> DbResult<i64> {
    tx.exec(
        "INSERT INTO events (id, time, source, detail_type, record_id, published_at, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            event.id,
            event.time,
            event.source,
            event.detail_type,
            event.record_id,
            now_ms,
            event.body
        ],
    )
    .ctx("archiving an event")?;
    let seq = tx.last_insert_rowid();
    for Route { rule, target } in routes {
        tx.exec(
            "INSERT INTO deliveries (event_seq, rule, target, first_at, next_at)
             VALUES (?1, ?2, ?3, ?4, ?4)",
            params![seq, rule, target, now_ms],
        )
        .ctx("queueing a delivery")?;
    }
    Ok(seq)
}
