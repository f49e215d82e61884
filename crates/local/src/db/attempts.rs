//! The delivery log: one row per delivery attempt (which rule and target, when, what came of
//! it), kept after the delivery left the queue, for an order's timeline in the console.

use rusqlite::params;

use super::{Context, Db, DbResult};

/// One delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRow {
    pub event_id: String,
    pub record_id: Option<String>,
    pub rule: String,
    pub target: String,
    pub attempt: u32,
    /// The market clock when it ended.
    pub market_at: String,
    pub wall_ms: i64,
    pub ok: bool,
    /// The last attempt: the delivery became a dead letter.
    pub dead: bool,
    /// What the handler did, or the error.
    pub summary: String,
}

impl Db {
    pub fn log_attempt(&self, a: &AttemptRow) -> DbResult<()> {
        self.conn()
            .prepare_cached(
                "INSERT INTO attempts (event_id, record_id, rule, target, attempt, market_at,
                     wall_ms, ok, dead, summary)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    a.event_id,
                    a.record_id,
                    a.rule,
                    a.target,
                    a.attempt,
                    a.market_at,
                    a.wall_ms,
                    a.ok,
                    a.dead,
                    a.summary
                ])
            })
            .map(|_| ())
            .ctx("logging a delivery attempt")
    }

    /// The attempts at delivering an order's events, oldest first.
    pub fn attempts_of(&self, record_id: &str) -> DbResult<Vec<AttemptRow>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT event_id, record_id, rule, target, attempt, market_at, wall_ms, ok, dead,
                        summary
                 FROM attempts WHERE record_id = ?1 ORDER BY id",
            )
            .ctx("reading delivery attempts")?;
        let rows = stmt
            .query_map([record_id], |r| {
                Ok(AttemptRow {
                    event_id: r.get(0)?,
                    record_id: r.get(1)?,
                    rule: r.get(2)?,
                    target: r.get(3)?,
                    attempt: r.get(4)?,
                    market_at: r.get(5)?,
                    wall_ms: r.get(6)?,
                    ok: r.get(7)?,
                    dead: r.get(8)?,
                    summary: r.get(9)?,
                })
            })
            .ctx("reading delivery attempts")?;
        rows.collect::<Result<_, _>>()
            .ctx("reading delivery attempts")
    }
}
