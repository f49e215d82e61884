//! One-time schedules (EventBridge Scheduler's `at()` schedules), fired on the market clock.

use rusqlite::params;
use serde_json::Value;

use super::archive::insert_event;
use super::{Cached, Context, Db, DbError, DbResult, Route, atomically};

impl Db {
    /// Creates a one-time schedule unless one with this name exists; true when created.
    pub fn create_schedule(&self, name: &str, at_ms: i64, event: &Value) -> DbResult<bool> {
        self.conn()
            .exec(
                // A fired schedule is gone in AWS (ActionAfterCompletion: DELETE): its name is
                // free, and taking it again makes a new schedule.
                "INSERT INTO schedules (name, at, event) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET at = excluded.at, event = excluded.event, fired = 0
                 WHERE schedules.fired = 1",
                params![name, at_ms, event.to_string()],
            )
            .map(|n| n == 1)
            .ctx("creating a schedule")
    }

    /// When the next unfired schedule is due (market-clock epoch ms).
    pub fn next_schedule_at(&self) -> DbResult<Option<i64>> {
        self.conn()
            .row("SELECT MIN(at) FROM schedules WHERE fired = 0", [], |r| {
                r.get(0)
            })
            .ctx("reading schedules")
    }

    /// Unfired schedules whose name starts with `prefix`, by name, after `after`, at most
    /// `limit`: (name, due epoch ms, event detail). What Scheduler's ListSchedules answers.
    pub fn list_schedules(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> DbResult<Vec<(String, i64, String)>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT name, at, event FROM schedules
                 WHERE fired = 0 AND substr(name, 1, length(?1)) = ?1 AND name > ?2
                 ORDER BY name LIMIT ?3",
            )
            .ctx("reading schedules")?;
        stmt.query_map(params![prefix, after.unwrap_or(""), limit as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .ctx("reading schedules")?
        .collect::<Result<_, _>>()
        .ctx("reading schedules")
    }

    /// One unfired schedule: (due epoch ms, event detail). Fired schedules are gone, as
    /// `ActionAfterCompletion: DELETE` makes them in AWS.
    pub fn get_schedule(&self, name: &str) -> DbResult<Option<(i64, String)>> {
        use rusqlite::OptionalExtension;
        self.conn()
            .row(
                "SELECT at, event FROM schedules WHERE fired = 0 AND name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .ctx("reading schedules")
    }

    pub fn pending_schedules(&self) -> DbResult<i64> {
        self.conn()
            .row("SELECT COUNT(*) FROM schedules WHERE fired = 0", [], |r| {
                r.get(0)
            })
            .ctx("reading schedules")
    }

    /// Fires every schedule due at `until_ms`: in one transaction per schedule, marks it fired
    /// and publishes its event through `wrap` (which makes the envelope and its routes).
    pub fn fire_due_schedules(
        &self,
        until_ms: i64,
        now_ms: i64,
        wrap: &dyn Fn(&Value) -> (Value, Vec<Route>),
    ) -> DbResult<usize> {
        let due: Vec<(String, String)> = {
            let conn = self.conn();
            let mut stmt = conn
                .prepare_cached(
                    "SELECT name, event FROM schedules WHERE fired = 0 AND at <= ?1
                     ORDER BY at, name LIMIT 500",
                )
                .ctx("reading schedules")?;
            stmt.query_map([until_ms], |r| Ok((r.get(0)?, r.get(1)?)))
                .ctx("reading schedules")?
                .collect::<Result<_, _>>()
                .ctx("reading schedules")?
        };
        atomically(&self.conn(), "firing schedules", |tx| {
            for (name, event) in &due {
                let detail: Value = serde_json::from_str(event).map_err(|e| DbError {
                    what: "firing schedules",
                    source: rusqlite::Error::FromSqlConversionFailure(
                        1,
                        rusqlite::types::Type::Text,
                        Box::new(e),
                    ),
                })?;
                let (envelope, routes) = wrap(&detail);
                tx.exec("UPDATE schedules SET fired = 1 WHERE name = ?1", [name])
                    .ctx("firing schedules")?;
                insert_event(tx, &envelope, &routes, now_ms)?;
            }
            Ok(due.len())
        })
    }
}
