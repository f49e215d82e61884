//! The delivery queue: one row per event and rule until its target took it or it became a dead
//! letter.

use rusqlite::{OptionalExtension, params};
use serde_json::Value;

use super::archive::insert_event;
use super::{Cached, Context, Db, DbResult, Route, atomically};
use super::{DeadLetter, DueDelivery};

/// The head of the queue (see [`Db::due_deliveries`]), ids only: the partial index covers it,
/// so a delivery in flight is passed over without reading its row or its event. No `LIMIT`:
/// SQLite prepares a statement again at its next step whenever the value bound to its `LIMIT`
/// changes, and the caller's limit changes with every call. The rows come in the index's order,
/// one step at a time, so the caller stops reading where it has enough.
pub(super) const DUE_DELIVERIES: &str = "SELECT id FROM deliveries
     WHERE state = 'pending' AND next_at <= ?1
     ORDER BY next_at, id";

/// One delivery of the queue's head, with its event. The id is read through a `CAST`: bound
/// bare, SQLite (3.54, with STAT4) prepares the statement again whenever its value changes,
/// which is every call. It is still a search by rowid.
pub(super) const DUE_DELIVERY: &str = "SELECT d.rule, d.target, d.attempt, d.first_at, e.body
     FROM deliveries d JOIN events e ON e.seq = d.event_seq
     WHERE d.id = CAST(?1 AS INTEGER)";

impl Db {
    /// Pending deliveries due at `now_ms`, earliest first, skipping `busy` ones.
    pub fn due_deliveries(
        &self,
        now_ms: i64,
        limit: usize,
        busy: &std::collections::HashSet<i64>,
    ) -> DbResult<Vec<DueDelivery>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let conn = self.conn();
        let mut ids = conn
            .prepare_cached(DUE_DELIVERIES)
            .ctx("reading deliveries")?;
        let mut one = conn
            .prepare_cached(DUE_DELIVERY)
            .ctx("reading deliveries")?;
        // The rows in flight are the oldest, so most of the head this reads is theirs: only
        // the others' rows and events are read.
        let mut rows = ids.query(params![now_ms]).ctx("reading deliveries")?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().ctx("reading deliveries")? {
            let id: i64 = row.get(0).ctx("reading deliveries")?;
            if busy.contains(&id) {
                continue;
            }
            let d = one
                .query_row(params![id], |r| {
                    Ok(DueDelivery {
                        id,
                        rule: r.get(0)?,
                        target: r.get(1)?,
                        attempt: r.get(2)?,
                        first_at: r.get(3)?,
                        body: r.get(4)?,
                    })
                })
                .optional()
                .ctx("reading deliveries")?;
            // None: its event is gone, which the foreign key forbids; nothing to deliver.
            if let Some(d) = d {
                out.push(d);
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// When the next pending delivery is due (epoch ms).
    pub fn next_delivery_at(&self) -> DbResult<Option<i64>> {
        self.conn()
            .row(
                "SELECT MIN(next_at) FROM deliveries WHERE state = 'pending'",
                [],
                |r| r.get(0),
            )
            .ctx("reading deliveries")
    }

    pub fn pending_deliveries(&self) -> DbResult<i64> {
        self.conn()
            .row(
                "SELECT COUNT(*) FROM deliveries WHERE state = 'pending'",
                [],
                |r| r.get(0),
            )
            .ctx("reading deliveries")
    }

    /// A delivery succeeded: it leaves the queue. A schedule rule's tick (`tick`: its event's
    /// source is `aws.events`) leaves the archive too: in AWS it never is on our bus.
    pub fn delivered(&self, id: i64, tick: bool) -> DbResult<()> {
        if !tick {
            // One statement, in the caller's transaction: nothing else to keep together.
            return self
                .conn()
                .exec("DELETE FROM deliveries WHERE id = ?1", [id])
                .map(|_| ())
                .ctx("completing a delivery");
        }
        atomically(&self.conn(), "completing a delivery", |tx| {
            let seq: Option<i64> = tx
                .row(
                    "SELECT event_seq FROM deliveries WHERE id = ?1",
                    [id],
                    |r| r.get(0),
                )
                .optional()
                .ctx("completing a delivery")?;
            tx.exec("DELETE FROM deliveries WHERE id = ?1", [id])
                .ctx("completing a delivery")?;
            if let Some(seq) = seq {
                tx.exec(
                    "DELETE FROM events WHERE seq = ?1 AND source = 'aws.events'
                       AND NOT EXISTS (SELECT 1 FROM deliveries WHERE event_seq = ?1)",
                    [seq],
                )
                .ctx("completing a delivery")?;
            }
            Ok(())
        })
    }

    /// A delivery to the bus itself: the event is archived again with its new deliveries, and
    /// this delivery leaves the queue, in one transaction.
    pub fn forwarded(&self, id: i64, event: &Value, routes: &[Route], now_ms: i64) -> DbResult<()> {
        atomically(&self.conn(), "forwarding an event to the bus", |tx| {
            insert_event(tx, event, routes, now_ms)?;
            tx.exec("DELETE FROM deliveries WHERE id = ?1", [id])
                .ctx("forwarding an event to the bus")?;
            Ok(())
        })
    }

    /// A delivery failed and will be tried again at `next_ms`.
    pub fn retry_later(&self, id: i64, attempt: u32, next_ms: i64, error: &str) -> DbResult<()> {
        self.conn()
            .exec(
                "UPDATE deliveries SET attempt = ?2, next_at = ?3, last_error = ?4 WHERE id = ?1",
                params![id, attempt, next_ms, error],
            )
            .map(|_| ())
            .ctx("rescheduling a delivery")
    }

    /// A delivery gave up: it becomes a dead letter, and `on_failure` (Lambda's on-failure
    /// record) is published in the same transaction.
    pub fn dead_letter(
        &self,
        id: i64,
        attempts: u32,
        error: &str,
        now_ms: i64,
        on_failure: Option<(&Value, &[Route])>,
    ) -> DbResult<()> {
        atomically(&self.conn(), "dead-lettering", |tx| {
            tx.exec(
                "UPDATE deliveries SET state = 'dead', attempt = ?2, last_error = ?3, dead_at = ?4
                 WHERE id = ?1",
                params![id, attempts, error, now_ms],
            )
            .ctx("dead-lettering")?;
            if let Some((event, routes)) = on_failure {
                insert_event(tx, event, routes, now_ms)?;
            }
            Ok(())
        })
    }

    pub fn dead_letters(&self) -> DbResult<Vec<DeadLetter>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT d.id, d.rule, d.target, d.attempt, d.dead_at, COALESCE(d.last_error, ''), e.body
                 FROM deliveries d JOIN events e ON e.seq = d.event_seq
                 WHERE d.state = 'dead' ORDER BY d.dead_at, d.id",
            )
            .ctx("reading dead letters")?;
        let rows = stmt
            .query_map([], |r| {
                let body: String = r.get(6)?;
                Ok(DeadLetter {
                    id: r.get(0)?,
                    rule: r.get(1)?,
                    target: r.get(2)?,
                    attempts: r.get(3)?,
                    dead_at: r.get(4)?,
                    error: r.get(5)?,
                    // An event that no longer reads is shown as the text the archive holds:
                    // it is why the delivery died, and the listing must not fail on it.
                    event: serde_json::from_str(&body).unwrap_or(Value::String(body)),
                })
            })
            .ctx("reading dead letters")?;
        rows.collect::<Result<_, _>>().ctx("reading dead letters")
    }

    /// Puts dead letters (all, or those with these ids) back in the queue, due now, with a fresh
    /// retry budget. Returns how many.
    pub fn redrive(&self, ids: &[i64], now_ms: i64) -> DbResult<usize> {
        let conn = self.conn();
        if ids.is_empty() {
            return conn
                .exec(
                    "UPDATE deliveries SET state = 'pending', attempt = 0, first_at = ?1,
                     next_at = ?1, dead_at = NULL WHERE state = 'dead'",
                    [now_ms],
                )
                .ctx("redriving");
        }
        let mut n = 0;
        for id in ids {
            n += conn
                .exec(
                    "UPDATE deliveries SET state = 'pending', attempt = 0, first_at = ?1,
                     next_at = ?1, dead_at = NULL WHERE state = 'dead' AND id = ?2",
                    params![now_ms, id],
                )
                .ctx("redriving")?;
        }
        Ok(n)
    }
}
