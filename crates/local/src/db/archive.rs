//! The event archive: every event published, in order; publishing queues its deliveries in the
//! same transaction.

use rusqlite::params;
use serde_json::Value;

use super::{Archived, EventFilter};
use super::{Context, Db, DbResult, Route, json_column};

impl Db {
    /// Archives `event` and queues one delivery per route, in one transaction. Returns the
    /// event's sequence number.
    pub fn publish(&self, event: &Value, routes: &[Route], now_ms: i64) -> DbResult<i64> {
        let mut conn = self.conn();
        let tx = conn.transaction().ctx("publishing")?;
        let seq = insert_event(&tx, event, routes, now_ms)?;
        tx.commit().ctx("publishing")?;
        Ok(seq)
    }

    /// Events, oldest first.
    pub fn events(&self, f: &EventFilter) -> DbResult<Vec<Archived>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT seq, published_at, body FROM events
                 WHERE seq > ?1
                   AND (?2 IS NULL OR record_id = ?2)
                   AND (?3 IS NULL OR detail_type = ?3)
                   AND (?4 IS NULL OR time >= ?4)
                 ORDER BY seq LIMIT ?5",
            )
            .ctx("reading events")?;
        let limit = f.limit.map_or(-1, |l| l as i64);
        let rows = stmt
            .query_map(
                params![f.after_seq, f.record_id, f.detail_type, f.since_time, limit],
                |r| {
                    let body: String = r.get(2)?;
                    Ok(Archived {
                        seq: r.get(0)?,
                        published_at: r.get(1)?,
                        body: json_column(&body, 2)?,
                    })
                },
            )
            .ctx("reading events")?;
        rows.collect::<Result<_, _>>().ctx("reading events")
    }
}

/// Archives `event` and queues one delivery per route, inside `tx`.
pub(super) fn insert_event(
    tx: &rusqlite::Transaction<'_>,
    event: &Value,
    routes: &[Route],
    now_ms: i64,
) -> DbResult<i64> {
    let s = |k: &str| event[k].as_str().unwrap_or_default().to_string();
    let record_id = event["detail"]["record_id"].as_str().map(String::from);
    tx.prepare_cached(
        "INSERT INTO events (id, time, source, detail_type, record_id, published_at, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut st| {
        st.execute(params![
            s("id"),
            s("time"),
            s("source"),
            s("detail-type"),
            record_id,
            now_ms,
            event.to_string()
        ])
    })
    .ctx("archiving an event")?;
    let seq = tx.last_insert_rowid();
    for Route { rule, target } in routes {
        tx.prepare_cached(
            "INSERT INTO deliveries (event_seq, rule, target, first_at, next_at)
             VALUES (?1, ?2, ?3, ?4, ?4)",
        )
        .and_then(|mut st| st.execute(params![seq, rule, target, now_ms]))
        .ctx("queueing a delivery")?;
    }
    Ok(seq)
}
