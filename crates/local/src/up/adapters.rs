//! The ports of `energy up` over the embedded database and the data dir: what DynamoDB, the
//! EventBridge bus, EventBridge Scheduler, S3, Slack and the auction platform are in AWS.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use energy_auction::sim::SimPlatform;
use energy_core::events::{DomainEvent, EnvelopeContext, OrderEvaluationDue, envelope, event_id};
use energy_core::lifecycle::{Expected, OrderRecord};
use energy_core::order::{Order, RecordId};
use energy_core::ports::{
    AuctionPlatform, Clock, DueOrder, DuePage, EventPublisher, Inserted, Notification, Notifier,
    OrderStore, PortError, PublishError, Replaced, ResultStore, ResultsStatus, RetryScheduler,
    Scheduled, Submission,
};
use jiff::Timestamp;
use rusqlite::{OptionalExtension, params};
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::db::{Db, Route, wall_ms};
use crate::topology::Topology;
use crate::up::clock::MarketClock;

fn port(what: &'static str) -> impl Fn(crate::db::DbError) -> PortError {
    move |e| PortError::transient(what, e.to_string())
}

/// What the bus, the scheduler and the delivery engine share.
pub struct Shared {
    pub db: Arc<Db>,
    pub clock: MarketClock,
    pub topology: Arc<Topology>,
    /// Wakes the delivery engine when something was queued.
    pub deliveries: Notify,
    /// Wakes the scheduler when a schedule was created.
    pub schedules: Notify,
    seed: u64,
    counter: AtomicU64,
    ctx: EnvelopeContext,
}

impl Shared {
    pub fn new(db: Arc<Db>, clock: MarketClock, topology: Arc<Topology>) -> Shared {
        Shared {
            db,
            clock,
            topology,
            deliveries: Notify::new(),
            schedules: Notify::new(),
            seed: Timestamp::now().as_nanosecond() as u64,
            counter: AtomicU64::new(0),
            ctx: EnvelopeContext::default(),
        }
    }

    /// A fresh event id.
    pub fn next_id(&self) -> String {
        event_id(self.seed, self.counter.fetch_add(1, Ordering::Relaxed))
    }

    /// The envelope of a domain event, stamped with the market clock.
    pub fn wrap(&self, event: &DomainEvent) -> Value {
        envelope(event, &self.next_id(), self.clock.now(), &self.ctx)
    }

    /// Where the rules send `event`, as the delivery queue records it.
    pub fn routes(&self, event: &Value) -> Vec<Route> {
        crate::db::routes(&self.topology, event)
    }

    /// Archives `event` and queues its deliveries.
    pub fn put(&self, event: &Value) -> Result<i64, crate::db::DbError> {
        let seq = self.db.publish(event, &self.routes(event), wall_ms())?;
        self.deliveries.notify_one();
        Ok(seq)
    }
}

/// Orders in the `orders` table; the due index is a partial SQL index on `due_at`.
pub struct LocalStore {
    pub shared: Arc<Shared>,
}

fn record_of(body: &str) -> Result<OrderRecord, PortError> {
    serde_json::from_str(body)
        .map_err(|e| PortError::permanent("order store", format!("unreadable record: {e}")))
}

impl LocalStore {
    fn now_s(&self) -> i64 {
        self.shared.clock.now().as_second()
    }

    fn write(&self, record: &OrderRecord, expected: Option<Expected>) -> Result<bool, PortError> {
        write_record(&self.shared.db.conn(), record, expected, self.now_s())
    }

    fn read(
        conn: &rusqlite::Connection,
        id: &RecordId,
        now_s: i64,
    ) -> Result<Option<OrderRecord>, PortError> {
        let body: Option<String> = conn
            .query_row(
                "SELECT body FROM orders WHERE record_id = ?1 AND expires_at > ?2",
                params![id.as_str(), now_s],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| PortError::transient("order store", e.to_string()))?;
        body.as_deref().map(record_of).transpose()
    }
}

/// Writes `record` on `conn`: a new one (or over one whose TTL passed) when `expected` is
/// `None`, else only over the stored record in the expected state and version. Every write
/// resets the sweeper's count.
fn write_record(
    conn: &rusqlite::Connection,
    record: &OrderRecord,
    expected: Option<Expected>,
    now: i64,
) -> Result<bool, PortError> {
    let body = serde_json::to_string(record)
        .map_err(|e| PortError::permanent("order store", e.to_string()))?;
    let due = record.due_at.map(|t| t.as_millisecond());
    let (id, state, version) = (
        record.order.record_id.as_str(),
        record.state.as_str(),
        record.version as i64,
    );
    // ?1..?7: the record; then the condition.
    let mut values: Vec<&dyn rusqlite::ToSql> = vec![
        &id,
        &state,
        &version,
        &record.attempt,
        &due,
        &record.ttl,
        &body,
    ];
    let (expected_state, expected_version);
    let sql = match expected {
        // A new record, or one whose TTL passed.
        None => {
            values.push(&now);
            "INSERT INTO orders (record_id, state, version, attempt, due_at, expires_at, body, sweeps)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0)
             ON CONFLICT (record_id) DO UPDATE SET state = excluded.state,
               version = excluded.version, attempt = excluded.attempt,
               due_at = excluded.due_at, expires_at = excluded.expires_at, body = excluded.body,
               sweeps = 0
             WHERE orders.expires_at <= ?8"
        }
        Some(e) => {
            (expected_state, expected_version) = (e.state.as_str(), e.version as i64);
            values.extend([
                &expected_state as &dyn rusqlite::ToSql,
                &expected_version,
                &now,
            ]);
            "UPDATE orders SET state = ?2, version = ?3, attempt = ?4, due_at = ?5,
               expires_at = ?6, body = ?7, sweeps = 0
             WHERE record_id = ?1 AND state = ?8 AND version = ?9 AND expires_at > ?10"
        }
    };
    let n = conn
        .prepare_cached(sql)
        .and_then(|mut stmt| stmt.execute(rusqlite::params_from_iter(values)))
        .map_err(|e| PortError::transient("order store", e.to_string()))?;
    Ok(n == 1)
}

#[async_trait]
impl OrderStore for LocalStore {
    async fn insert(&self, record: &OrderRecord) -> Result<Inserted, PortError> {
        if self.write(record, None)? {
            return Ok(Inserted::New);
        }
        match self.get(&record.order.record_id).await? {
            Some(existing) => Ok(Inserted::Exists(Box::new(existing))),
            None => Err(PortError::transient(
                "order store",
                "the record vanished during a conditional insert",
            )),
        }
    }

    async fn insert_batch(&self, batch: &[OrderRecord]) -> Result<Vec<Inserted>, PortError> {
        let db_error = |e: rusqlite::Error| PortError::transient("order store", e.to_string());
        let now = self.now_s();
        let mut conn = self.shared.db.conn();
        // IMMEDIATE: the write lock is taken before the reads, so no other writer can slip an
        // order in between what this batch saw and what it writes.
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db_error)?;
        let mut answers = Vec::with_capacity(batch.len());
        for record in batch {
            answers.push(match Self::read(&tx, &record.order.record_id, now)? {
                Some(existing) => Inserted::Exists(Box::new(existing)),
                None => Inserted::New,
            });
        }
        if energy_core::ports::conflicts(batch, &answers) {
            for a in &mut answers {
                if matches!(a, Inserted::New) {
                    *a = Inserted::Withheld;
                }
            }
            return Ok(answers);
        }
        for (record, answer) in batch.iter().zip(&answers) {
            if matches!(answer, Inserted::New) && !write_record(&tx, record, None, now)? {
                return Err(PortError::transient(
                    "order store",
                    "a record appeared inside the batch's own transaction",
                ));
            }
        }
        tx.commit().map_err(db_error)?;
        Ok(answers)
    }

    async fn get(&self, record_id: &RecordId) -> Result<Option<OrderRecord>, PortError> {
        Self::read(&self.shared.db.conn(), record_id, self.now_s())
    }

    async fn claim_sweep(&self, seen: &DueOrder, next: Timestamp) -> Result<bool, PortError> {
        let n = self
            .shared
            .db
            .conn()
            .prepare_cached(
                "UPDATE orders SET due_at = ?1, sweeps = sweeps + 1
                 WHERE record_id = ?2 AND due_at = ?3",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    next.as_millisecond(),
                    seen.record_id.as_str(),
                    seen.due_at.as_millisecond()
                ])
            })
            .map_err(|e| PortError::transient("order store", e.to_string()))?;
        Ok(n == 1)
    }

    async fn replace(
        &self,
        record: &OrderRecord,
        expected: Expected,
    ) -> Result<Replaced, PortError> {
        Ok(if self.write(record, Some(expected))? {
            Replaced::Applied
        } else {
            Replaced::Conflict
        })
    }

    async fn due(
        &self,
        until: Timestamp,
        limit: usize,
        cursor: Option<String>,
    ) -> Result<DuePage, PortError> {
        let (after_at, after_id) = match cursor.as_deref() {
            None => (i64::MIN, String::new()),
            Some(c) => {
                let bad = || PortError::permanent("order store", format!("bad cursor {c:?}"));
                let (at, id) = c.split_once('|').ok_or_else(bad)?;
                (at.parse().map_err(|_| bad())?, id.to_string())
            }
        };
        let limit = limit.max(1);
        let conn = self.shared.db.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT record_id, attempt, due_at, sweeps FROM orders
                 WHERE due_at IS NOT NULL AND due_at <= ?1
                   AND (due_at > ?2 OR (due_at = ?2 AND record_id > ?3))
                   AND expires_at > ?4
                 ORDER BY due_at, record_id LIMIT ?5",
            )
            .map_err(|e| PortError::transient("order store", e.to_string()))?;
        let rows = stmt
            .query_map(
                params![
                    until.as_millisecond(),
                    after_at,
                    after_id,
                    self.now_s(),
                    limit as i64 + 1
                ],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, u32>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, u32>(3)?,
                    ))
                },
            )
            .map_err(|e| PortError::transient("order store", e.to_string()))?;
        let mut items = Vec::new();
        let mut more = false;
        for row in rows {
            let (id, attempt, at, sweeps) =
                row.map_err(|e| PortError::transient("order store", e.to_string()))?;
            if items.len() == limit {
                more = true;
                break;
            }
            items.push(DueOrder {
                record_id: RecordId::parse(&id).map_err(|e| {
                    PortError::permanent("order store", format!("bad id {id:?}: {e}"))
                })?,
                attempt,
                due_at: Timestamp::from_millisecond(at).map_err(|e| {
                    PortError::permanent("order store", format!("bad due_at {at}: {e}"))
                })?,
                sweeps,
            });
        }
        let next = if more {
            items
                .last()
                .map(|d: &DueOrder| format!("{}|{}", d.due_at.as_millisecond(), d.record_id))
        } else {
            None
        };
        Ok(DuePage { items, next })
    }
}

/// The bus: each publish archives the event and queues its deliveries in one transaction.
pub struct LocalBus {
    pub shared: Arc<Shared>,
}

#[async_trait]
impl EventPublisher for LocalBus {
    async fn publish(&self, events: &[DomainEvent]) -> Result<(), PublishError> {
        let mut failed = Vec::new();
        for (i, event) in events.iter().enumerate() {
            if let Err(e) = self.shared.put(&self.shared.wrap(event)) {
                failed.push((i, e.to_string()));
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(PublishError {
                total: events.len(),
                failed,
            })
        }
    }
}

/// One-time schedules in the `schedules` table, fired by the scheduler loop.
pub struct LocalScheduler {
    pub shared: Arc<Shared>,
}

#[async_trait]
impl RetryScheduler for LocalScheduler {
    async fn schedule(
        &self,
        name: &str,
        at: Timestamp,
        event: &OrderEvaluationDue,
    ) -> Result<Scheduled, PortError> {
        let detail = DomainEvent::EvaluationDue(event.clone()).detail();
        let created = self
            .shared
            .db
            .create_schedule(name, at.as_millisecond(), &detail)
            .map_err(port("scheduler"))?;
        self.shared.schedules.notify_one();
        Ok(if created {
            Scheduled::Created
        } else {
            Scheduled::AlreadyExists
        })
    }
}

/// Result objects as files: `<data-dir>/results/<key>`, the S3 bucket's keys.
pub struct FileResults {
    pub dir: PathBuf,
    /// Where objects are written before they are renamed into `dir`: a crash never leaves a
    /// partial object among the results.
    pub tmp: PathBuf,
}

/// Numbers the temporary files of this process: with the process id, a name no other write
/// can hold (a clock, however fine, gives two writes the same instant).
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl FileResults {
    /// A fresh name for an object being written, unique by construction.
    fn temp_path(&self) -> PathBuf {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        self.tmp.join(format!("{}-{n}", std::process::id()))
    }
}

#[async_trait]
impl ResultStore for FileResults {
    async fn put(&self, key: &str, body: &[u8]) -> Result<(), PortError> {
        if key
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
        {
            return Err(PortError::permanent(
                "results",
                format!("unsafe key {key:?}"),
            ));
        }
        // The bucket's keys start with `results/`; the data dir's folder is that prefix.
        let relative = key.strip_prefix("results/").unwrap_or(key);
        let path = self.dir.join(relative);
        let io = |e: std::io::Error| PortError::transient("results", format!("{key}: {e}"));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        // Written whole or not at all: a crash never leaves half an object.
        std::fs::create_dir_all(&self.tmp).map_err(io)?;
        let tmp = self.temp_path();
        // create_new: should a name ever be taken (a file left by a killed process with the
        // same pid), fail rather than write into it.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io)?;
        file.write_all(body).map_err(io)?;
        drop(file);
        std::fs::rename(&tmp, &path).map_err(io)?;
        Ok(())
    }
}

/// Where notifications go.
pub enum Sink {
    /// The console (and the log file).
    Console,
    /// A Slack incoming webhook (and the log file).
    Slack { url: String, http: reqwest::Client },
}

/// The desk's notifications: one per key, kept in the database, appended to
/// `notifications.jsonl`, and sent to Slack or printed.
pub struct LocalNotifier {
    pub shared: Arc<Shared>,
    pub log: PathBuf,
    pub sink: Sink,
    pub log_lock: std::sync::Mutex<()>,
}

impl LocalNotifier {
    /// Rewrites the log from the database, the source of truth: a crash between the database
    /// write and the append neither loses nor duplicates a line.
    pub fn reconcile(&self) -> anyhow::Result<()> {
        let lines = self.shared.db.notifications()?;
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let tmp = self.log.with_extension("jsonl.tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &self.log)?;
        Ok(())
    }
}

#[async_trait]
impl Notifier for LocalNotifier {
    async fn notify(&self, n: &Notification) -> Result<(), PortError> {
        if let Sink::Slack { url, http } = &self.sink {
            let response = http
                .post(url)
                .json(&n.payload)
                .send()
                .await
                .map_err(|e| PortError::transient("slack", e.to_string()))?;
            let status = response.status();
            if !status.is_success() {
                let body = response.text().await.unwrap_or_default();
                return Err(PortError {
                    what: "slack",
                    message: format!("{status}: {body}"),
                    retryable: status.is_server_error() || status.as_u16() == 429,
                });
            }
        }
        let line = json!({
            "key": n.key,
            "at": self.shared.clock.now().to_string(),
            "text": n.text,
            "payload": n.payload,
        })
        .to_string();
        let new = self
            .shared
            .db
            .record_notification(&n.key, &line)
            .map_err(port("notifications"))?;
        if new {
            let _guard = self.log_lock.lock().unwrap_or_else(|e| e.into_inner());
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.log)
                .map_err(|e| PortError::transient("notifications", e.to_string()))?;
            writeln!(file, "{line}")
                .map_err(|e| PortError::transient("notifications", e.to_string()))?;
            if matches!(self.sink, Sink::Console) {
                println!("[slack] {}", n.text.replace('\n', "\n        "));
            }
        }
        Ok(())
    }
}

/// The simulated platform, with the orders it accepted kept in the database: after a restart
/// it holds them again and clears each auction exactly as it would have.
pub struct PersistentPlatform {
    pub shared: Arc<Shared>,
    pub sim: Arc<SimPlatform>,
}

impl PersistentPlatform {
    /// Gives the simulator back the orders it had accepted.
    pub fn restore(&self) -> anyhow::Result<usize> {
        let bodies = self.shared.db.platform_orders()?;
        for body in &bodies {
            let order: Order = serde_json::from_str(body)?;
            self.sim.restore(order);
        }
        Ok(bodies.len())
    }
}

#[async_trait]
impl AuctionPlatform for PersistentPlatform {
    async fn submit(&self, order: &Order) -> Result<Submission, PortError> {
        let body = serde_json::to_string(order)
            .map_err(|e| PortError::permanent("auction platform", e.to_string()))?;
        // Kept before it is accepted, forgotten if refused: a crash in between loses nothing.
        let db = &self.shared.db;
        db.platform_accept(order.record_id.as_str(), &body)
            .map_err(port("auction platform"))?;
        let answer = self.sim.submit(order).await;
        if !matches!(answer, Ok(Submission::Accepted { .. })) {
            db.platform_forget(order.record_id.as_str(), &body)
                .map_err(port("auction platform"))?;
        }
        answer
    }

    async fn results(&self, order: &Order) -> Result<ResultsStatus, PortError> {
        self.sim.results(order).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Temporary names are unique by construction, however fast or coarse the clock.
    #[test]
    fn temporary_names_never_repeat() {
        let store = Arc::new(FileResults {
            dir: PathBuf::from("/nonexistent/results"),
            tmp: PathBuf::from("/nonexistent/tmp"),
        });
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let store = store.clone();
                std::thread::spawn(move || {
                    (0..50_000).map(|_| store.temp_path()).collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all = std::collections::HashSet::new();
        let mut repeats = 0;
        for t in threads {
            for name in t.join().unwrap() {
                if !all.insert(name) {
                    repeats += 1;
                }
            }
        }
        assert_eq!(repeats, 0, "temporary names repeated");
    }

    /// Many writers at once, each object under its own key with its own bytes: every object
    /// holds exactly what was written under its key (a shared temporary name once renamed one
    /// order's result onto another's key).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_result_writes_each_keep_their_own_bytes() {
        let dir = std::env::temp_dir().join(format!(
            "energy-results-{}-{}",
            std::process::id(),
            Timestamp::now().as_nanosecond()
        ));
        let store = Arc::new(FileResults {
            dir: dir.join("results"),
            tmp: dir.join("tmp"),
        });
        let mut tasks = Vec::new();
        for writer in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..1_500 {
                    let key = format!("results/2026-11-28/NL/w{writer}-{i:05}.json");
                    let body = format!("{{\"writer\":{writer},\"i\":{i}}}");
                    store.put(&key, body.as_bytes()).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let mut wrong = Vec::new();
        for writer in 0..8 {
            for i in 0..1_500 {
                let path = dir.join(format!("results/2026-11-28/NL/w{writer}-{i:05}.json"));
                let body = std::fs::read_to_string(&path).unwrap_or_default();
                if body != format!("{{\"writer\":{writer},\"i\":{i}}}") {
                    wrong.push(format!("{}: {body:?}", path.display()));
                }
            }
        }
        let leftovers = std::fs::read_dir(dir.join("tmp")).map_or(0, |d| d.count());
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            wrong.is_empty(),
            "{} objects hold other bytes: {:?}",
            wrong.len(),
            &wrong[..wrong.len().min(5)]
        );
        assert_eq!(leftovers, 0, "temporary files left behind");
    }
}
