//! The embedded database of `energy up`: one SQLite file (`<data-dir>/energy.db`) holds the
//! orders, the one-time schedules, the event archive, the delivery queue with its dead letters,
//! the platform's accepted orders, the notifications sent and the market clock.
//!
//! Why SQLite (rusqlite's bundled build) rather than redb: the due index, the delivery queue
//! ordered by next attempt and the archive filtered by order or type are each one indexed SQL
//! query instead of hand-kept secondary tables; every publish writes the event and its deliveries
//! in one transaction; and a developer can open the file with any SQLite tool. WAL mode with
//! `synchronous=NORMAL` keeps every committed transaction across a killed process (only a power
//! loss may drop the last few), and lets the `energy events|dlq|orders` commands read and write
//! while `energy up` runs.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    record_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    version INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    due_at INTEGER,
    expires_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    sweeps INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS orders_due ON orders (due_at, record_id) WHERE due_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS orders_expiry ON orders (expires_at);
CREATE TABLE IF NOT EXISTS schedules (
    name TEXT PRIMARY KEY,
    at INTEGER NOT NULL,
    event TEXT NOT NULL,
    fired INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS schedules_due ON schedules (at) WHERE fired = 0;
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    time TEXT NOT NULL,
    source TEXT NOT NULL,
    detail_type TEXT NOT NULL,
    record_id TEXT,
    published_at INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_record ON events (record_id);
CREATE INDEX IF NOT EXISTS events_type ON events (detail_type);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_seq INTEGER NOT NULL REFERENCES events (seq),
    rule TEXT NOT NULL,
    target TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    first_at INTEGER NOT NULL,
    next_at INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    last_error TEXT,
    dead_at INTEGER
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (next_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS deliveries_dead ON deliveries (dead_at) WHERE state = 'dead';
CREATE TABLE IF NOT EXISTS platform_orders (
    record_id TEXT PRIMARY KEY,
    receipt INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS platform_receipts ON platform_orders (receipt);
CREATE TABLE IF NOT EXISTS notifications (
    key TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    line TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS notifications_seq ON notifications (seq);
"#;

/// The database, one connection behind a lock: every statement is short, and SQLite serialises
/// writers anyway.
pub struct Db {
    path: PathBuf,
    conn: Mutex<Connection>,
}

/// A database error, with what was being done.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct DbError {
    pub what: &'static str,
    #[source]
    pub source: rusqlite::Error,
}

pub type DbResult<T> = Result<T, DbError>;

trait Context<T> {
    fn ctx(self, what: &'static str) -> DbResult<T>;
}

impl<T> Context<T> for rusqlite::Result<T> {
    fn ctx(self, what: &'static str) -> DbResult<T> {
        self.map_err(|source| DbError { what, source })
    }
}

/// An archived event.
#[derive(Debug, Clone)]
pub struct Archived {
    pub seq: i64,
    pub published_at: i64,
    pub body: Value,
}

/// A delivery to attempt.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub id: i64,
    pub rule: String,
    /// The target as recorded when the event was published.
    pub target: String,
    pub attempt: u32,
    pub first_at: i64,
    pub event: Value,
}

/// A dead letter.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub id: i64,
    pub rule: String,
    pub target: String,
    pub attempts: u32,
    pub dead_at: i64,
    pub error: String,
    pub event: Value,
}

/// A filter on the archive.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub after_seq: i64,
    pub record_id: Option<String>,
    pub detail_type: Option<String>,
    /// Events whose `time` (the market clock, `YYYY-MM-DDTHH:MM:SSZ`) is at or after this.
    pub since_time: Option<String>,
    pub limit: Option<usize>,
}

/// What one event is routed to: the rule's name and a description of its target.
pub type Route = (String, String);

/// The delivery rows `topology` makes for `event`.
pub fn routes(topology: &crate::topology::Topology, event: &Value) -> Vec<Route> {
    topology
        .routes(event)
        .into_iter()
        .map(|(rule, target)| (rule.to_string(), target.describe()))
        .collect()
}

/// A JSON column read back: a row the database holds but cannot parse is an error that names
/// it, never a `null` that would travel on.
fn json_column(text: &str, index: usize) -> rusqlite::Result<Value> {
    serde_json::from_str(text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// Wall-clock milliseconds: the delivery queue's time (the market clock is not).
pub fn wall_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Brings a database made by an earlier version up to [`SCHEMA`].
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let has_sweeps: bool = conn.query_row(
        "SELECT COUNT(*) FROM pragma_table_info('orders') WHERE name = 'sweeps'",
        [],
        |r| r.get::<_, i64>(0).map(|n| n > 0),
    )?;
    if !has_sweeps {
        conn.execute_batch("ALTER TABLE orders ADD COLUMN sweeps INTEGER NOT NULL DEFAULT 0")?;
    }
    Ok(())
}

impl Db {
    /// Opens (creating if needed) `<dir>/energy.db`.
    pub fn open(dir: &Path) -> anyhow::Result<Db> {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create the data dir {}: {e}", dir.display()))?;
        let path = dir.join("energy.db");
        let conn = Connection::open(&path)
            .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.execute_batch(SCHEMA)
            .map_err(|e| anyhow::anyhow!("{}: cannot create the schema: {e}", path.display()))?;
        migrate(&conn)
            .map_err(|e| anyhow::anyhow!("{}: cannot upgrade the schema: {e}", path.display()))?;
        Ok(Db {
            path,
            conn: Mutex::new(conn),
        })
    }

    /// Whether `<dir>/energy.db` exists.
    pub fn exists(dir: &Path) -> bool {
        dir.join("energy.db").exists()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ---- meta ----

    pub fn meta(&self, key: &str) -> DbResult<Option<String>> {
        self.conn()
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .ctx("reading meta")
    }

    pub fn set_meta(&self, key: &str, value: &str) -> DbResult<()> {
        self.conn()
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map(|_| ())
            .ctx("writing meta")
    }

    // ---- events and deliveries ----

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

    /// Pending deliveries due at `now_ms`, earliest first, skipping `busy` ones.
    pub fn due_deliveries(
        &self,
        now_ms: i64,
        limit: usize,
        busy: &std::collections::HashSet<i64>,
    ) -> DbResult<Vec<DueDelivery>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT d.id, d.rule, d.target, d.attempt, d.first_at, e.body
                 FROM deliveries d JOIN events e ON e.seq = d.event_seq
                 WHERE d.state = 'pending' AND d.next_at <= ?1
                 ORDER BY d.next_at, d.id LIMIT ?2",
            )
            .ctx("reading deliveries")?;
        let rows = stmt
            .query_map(params![now_ms, (limit + busy.len()) as i64], |r| {
                let body: String = r.get(5)?;
                Ok(DueDelivery {
                    id: r.get(0)?,
                    rule: r.get(1)?,
                    target: r.get(2)?,
                    attempt: r.get(3)?,
                    first_at: r.get(4)?,
                    event: json_column(&body, 5)?,
                })
            })
            .ctx("reading deliveries")?;
        let mut out = Vec::new();
        for row in rows {
            let d = row.ctx("reading deliveries")?;
            if !busy.contains(&d.id) {
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
            .query_row(
                "SELECT MIN(next_at) FROM deliveries WHERE state = 'pending'",
                [],
                |r| r.get(0),
            )
            .ctx("reading deliveries")
    }

    pub fn pending_deliveries(&self) -> DbResult<i64> {
        self.conn()
            .query_row(
                "SELECT COUNT(*) FROM deliveries WHERE state = 'pending'",
                [],
                |r| r.get(0),
            )
            .ctx("reading deliveries")
    }

    /// A delivery succeeded: it leaves the queue. A schedule rule's tick (source `aws.events`)
    /// leaves the archive too: in AWS it never is on our bus.
    pub fn delivered(&self, id: i64) -> DbResult<()> {
        let mut conn = self.conn();
        let tx = conn.transaction().ctx("completing a delivery")?;
        let seq: Option<i64> = tx
            .query_row(
                "SELECT event_seq FROM deliveries WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()
            .ctx("completing a delivery")?;
        tx.execute("DELETE FROM deliveries WHERE id = ?1", [id])
            .ctx("completing a delivery")?;
        if let Some(seq) = seq {
            tx.execute(
                "DELETE FROM events WHERE seq = ?1 AND source = 'aws.events'
                   AND NOT EXISTS (SELECT 1 FROM deliveries WHERE event_seq = ?1)",
                [seq],
            )
            .ctx("completing a delivery")?;
        }
        tx.commit().ctx("completing a delivery")
    }

    /// A delivery failed and will be tried again at `next_ms`.
    pub fn retry_later(&self, id: i64, attempt: u32, next_ms: i64, error: &str) -> DbResult<()> {
        self.conn()
            .execute(
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
        let mut conn = self.conn();
        let tx = conn.transaction().ctx("dead-lettering")?;
        tx.execute(
            "UPDATE deliveries SET state = 'dead', attempt = ?2, last_error = ?3, dead_at = ?4
             WHERE id = ?1",
            params![id, attempts, error, now_ms],
        )
        .ctx("dead-lettering")?;
        if let Some((event, routes)) = on_failure {
            insert_event(&tx, event, routes, now_ms)?;
        }
        tx.commit().ctx("dead-lettering")
    }

    pub fn dead_letters(&self) -> DbResult<Vec<DeadLetter>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
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
                    event: json_column(&body, 5)?,
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
                .execute(
                    "UPDATE deliveries SET state = 'pending', attempt = 0, first_at = ?1,
                     next_at = ?1, dead_at = NULL WHERE state = 'dead'",
                    [now_ms],
                )
                .ctx("redriving");
        }
        let mut n = 0;
        for id in ids {
            n += conn
                .execute(
                    "UPDATE deliveries SET state = 'pending', attempt = 0, first_at = ?1,
                     next_at = ?1, dead_at = NULL WHERE state = 'dead' AND id = ?2",
                    params![now_ms, id],
                )
                .ctx("redriving")?;
        }
        Ok(n)
    }

    // ---- schedules ----

    /// Creates a one-time schedule unless one with this name exists; true when created.
    pub fn create_schedule(&self, name: &str, at_ms: i64, event: &Value) -> DbResult<bool> {
        self.conn()
            .execute(
                "INSERT OR IGNORE INTO schedules (name, at, event) VALUES (?1, ?2, ?3)",
                params![name, at_ms, event.to_string()],
            )
            .map(|n| n == 1)
            .ctx("creating a schedule")
    }

    /// When the next unfired schedule is due (market-clock epoch ms).
    pub fn next_schedule_at(&self) -> DbResult<Option<i64>> {
        self.conn()
            .query_row("SELECT MIN(at) FROM schedules WHERE fired = 0", [], |r| {
                r.get(0)
            })
            .ctx("reading schedules")
    }

    pub fn pending_schedules(&self) -> DbResult<i64> {
        self.conn()
            .query_row("SELECT COUNT(*) FROM schedules WHERE fired = 0", [], |r| {
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
        let mut conn = self.conn();
        let tx = conn.transaction().ctx("firing schedules")?;
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
            tx.execute("UPDATE schedules SET fired = 1 WHERE name = ?1", [name])
                .ctx("firing schedules")?;
            insert_event(&tx, &envelope, &routes, now_ms)?;
        }
        tx.commit().ctx("firing schedules")?;
        Ok(due.len())
    }

    // ---- orders ----

    pub fn orders_by_state(&self) -> DbResult<Vec<(String, i64)>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT state, COUNT(*) FROM orders GROUP BY state ORDER BY state")
            .ctx("counting orders")?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .ctx("counting orders")?
            .collect::<Result<_, _>>()
            .ctx("counting orders")
    }

    /// Deletes orders whose TTL (epoch seconds) passed; returns how many.
    pub fn expire_orders(&self, now_s: i64) -> DbResult<usize> {
        self.conn()
            .execute("DELETE FROM orders WHERE expires_at <= ?1", [now_s])
            .ctx("expiring orders")
    }

    // ---- platform ----

    /// Remembers an order the platform accepted (a replacement takes a new receipt).
    pub fn platform_accept(&self, record_id: &str, body: &str) -> DbResult<()> {
        self.conn()
            .execute(
                "INSERT INTO platform_orders (record_id, receipt, body)
                 VALUES (?1, (SELECT COALESCE(MAX(receipt), 0) + 1 FROM platform_orders), ?2)
                 ON CONFLICT (record_id) DO UPDATE SET body = excluded.body,
                   receipt = excluded.receipt WHERE body <> excluded.body",
                params![record_id, body],
            )
            .map(|_| ())
            .ctx("writing a platform order")
    }

    pub fn platform_forget(&self, record_id: &str, body: &str) -> DbResult<()> {
        self.conn()
            .execute(
                "DELETE FROM platform_orders WHERE record_id = ?1 AND body = ?2",
                params![record_id, body],
            )
            .map(|_| ())
            .ctx("deleting a platform order")
    }

    /// The platform's orders, earliest receipt first.
    pub fn platform_orders(&self) -> DbResult<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT body FROM platform_orders ORDER BY receipt")
            .ctx("reading platform orders")?;
        stmt.query_map([], |r| r.get(0))
            .ctx("reading platform orders")?
            .collect::<Result<_, _>>()
            .ctx("reading platform orders")
    }

    // ---- notifications ----

    /// Records a notification unless its key was recorded; true when new.
    pub fn record_notification(&self, key: &str, line: &str) -> DbResult<bool> {
        self.conn()
            .execute(
                "INSERT OR IGNORE INTO notifications (key, seq, line)
                 VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM notifications), ?2)",
                params![key, line],
            )
            .map(|n| n == 1)
            .ctx("recording a notification")
    }

    pub fn notifications(&self) -> DbResult<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT line FROM notifications ORDER BY seq")
            .ctx("reading notifications")?;
        stmt.query_map([], |r| r.get(0))
            .ctx("reading notifications")?
            .collect::<Result<_, _>>()
            .ctx("reading notifications")
    }
}

fn insert_event(
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
    for (rule, target) in routes {
        tx.prepare_cached(
            "INSERT INTO deliveries (event_seq, rule, target, first_at, next_at)
             VALUES (?1, ?2, ?3, ?4, ?4)",
        )
        .and_then(|mut st| st.execute(params![seq, rule, target, now_ms]))
        .ctx("queueing a delivery")?;
    }
    Ok(seq)
}
