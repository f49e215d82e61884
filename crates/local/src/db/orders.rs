//! The orders table (DynamoDB's in AWS) and its sparse due index. Rows carry the record as JSON
//! (`body`) beside the columns conditions and the index need; what the JSON means is the order
//! store adapter's business, not this module's.

use rusqlite::{Connection, OptionalExtension, params};

use super::{Cached, Context, Db, DbResult, atomically};

/// One order row as written.
#[derive(Debug, Clone)]
pub struct OrderRow {
    pub record_id: String,
    pub state: &'static str,
    pub version: i64,
    pub attempt: u32,
    /// Epoch milliseconds; `None` takes the row out of the due index.
    pub due_at: Option<i64>,
    /// Epoch seconds (the TTL).
    pub expires_at: i64,
    pub listing: Listing,
    pub body: String,
}

/// What the console's order list sorts and filters by, beside the body. An amendment may
/// change the market, zone and day; the submission time never changes once the row is in.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Epoch milliseconds.
    pub submitted_ms: i64,
    pub market: &'static str,
    pub zone: &'static str,
    pub delivery_date: String,
}

/// Which orders a listing shows.
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub state: Option<String>,
    pub market: Option<String>,
    pub zone: Option<String>,
    pub day: Option<String>,
    pub limit: usize,
}

/// One entry of the due index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueRow {
    pub record_id: String,
    pub attempt: u32,
    pub due_at: i64,
    pub sweeps: u32,
}

/// Writes `row`: a new one (or over one whose TTL passed) when `expected` is `None`, else only
/// over the row in the expected state and version. Every write resets the sweeper's count.
fn write(
    conn: &Connection,
    row: &OrderRow,
    expected: Option<(&str, i64)>,
    now_s: i64,
) -> DbResult<bool> {
    let n = match expected {
        None => conn
            .prepare_cached(
                "INSERT INTO orders (record_id, state, version, attempt, due_at, expires_at,
                   submitted_ms, market, zone, delivery_date, body, sweeps)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?9, ?10, ?11, ?12, ?7, 0)
                 ON CONFLICT (record_id) DO UPDATE SET state = excluded.state,
                   version = excluded.version, attempt = excluded.attempt,
                   due_at = excluded.due_at, expires_at = excluded.expires_at,
                   submitted_ms = excluded.submitted_ms, market = excluded.market,
                   zone = excluded.zone, delivery_date = excluded.delivery_date,
                   body = excluded.body, sweeps = 0
                 WHERE orders.expires_at <= ?8",
            )
            .and_then(|mut st| {
                st.execute(params![
                    row.record_id,
                    row.state,
                    row.version,
                    row.attempt,
                    row.due_at,
                    row.expires_at,
                    row.body,
                    now_s,
                    row.listing.submitted_ms,
                    row.listing.market,
                    row.listing.zone,
                    row.listing.delivery_date,
                ])
            }),
        // Not `submitted_ms`: it never changes, and leaving it out of the statement leaves
        // the list's index alone.
        Some((state, version)) => conn
            .prepare_cached(
                "UPDATE orders SET state = ?2, version = ?3, attempt = ?4, due_at = ?5,
                   expires_at = ?6, market = ?11, zone = ?12, delivery_date = ?13, body = ?7,
                   sweeps = 0
                 WHERE record_id = ?1 AND state = ?8 AND version = ?9 AND expires_at > ?10",
            )
            .and_then(|mut st| {
                st.execute(params![
                    row.record_id,
                    row.state,
                    row.version,
                    row.attempt,
                    row.due_at,
                    row.expires_at,
                    row.body,
                    state,
                    version,
                    now_s,
                    row.listing.market,
                    row.listing.zone,
                    row.listing.delivery_date,
                ])
            }),
    };
    n.map(|n| n == 1).ctx("writing an order")
}

fn read(conn: &Connection, record_id: &str, now_s: i64) -> DbResult<Option<String>> {
    conn.prepare_cached("SELECT body FROM orders WHERE record_id = ?1 AND expires_at > ?2")
        .and_then(|mut st| {
            st.query_row(params![record_id, now_s], |r| r.get(0))
                .optional()
        })
        .ctx("reading an order")
}

/// The due index read (see [`Db::due_orders`]). Its bound values never change its plan, so
/// SQLite keeps it prepared: no `LIMIT` (the rows come in the index's order and the caller takes
/// what it needs), and the page's start as one row value rather than `due_at > ?a OR (due_at =
/// ?a AND record_id > ?b)`, whose `due_at = ?a` made SQLite (the bundled 3.54, with STAT4)
/// prepare the statement again at every call. The row value is also where the index is entered.
pub(super) const DUE_ORDERS: &str = "SELECT record_id, attempt, due_at, sweeps FROM orders
     WHERE due_at IS NOT NULL AND (due_at, record_id) > (?2, ?3) AND due_at <= ?1
       AND due_at > ?5 AND expires_at > ?4
     ORDER BY due_at, record_id";

/// The console list's counts, in one pass over the live orders: per state, all of them and
/// those the filter's market, zone and day select. One scan of the table (`+expires_at`: the
/// expiry index would add a lookup for each live order, and nearly every stored one is live).
const LIST_COUNTS: &str = "SELECT state, COUNT(*),
       SUM((?2 IS NULL OR market = ?2) AND (?3 IS NULL OR zone = ?3)
           AND (?4 IS NULL OR delivery_date = ?4))
     FROM orders WHERE +expires_at > ?1 GROUP BY state ORDER BY state";

/// The console list's page: newest first, along `orders_listed`, so it reads the orders it
/// shows (and those the filter passes over on the way), not every order.
pub(super) const LIST_PAGE: &str = "SELECT body FROM orders INDEXED BY orders_listed
     WHERE expires_at > ?1 AND (?2 IS NULL OR state = ?2) AND (?3 IS NULL OR market = ?3)
       AND (?4 IS NULL OR zone = ?4) AND (?5 IS NULL OR delivery_date = ?5)
     ORDER BY submitted_ms DESC, record_id LIMIT ?6";

/// The console's order list: live orders per state, how many the filter selects, and the
/// newest of them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrderList {
    pub by_state: Vec<(String, i64)>,
    pub total: i64,
    pub bodies: Vec<String>,
}

impl Db {
    /// A new order (true), unless a live one has its id (false).
    pub fn insert_order(&self, row: &OrderRow, now_s: i64) -> DbResult<bool> {
        write(&self.conn(), row, None, now_s)
    }

    /// Replaces the order if it is still in `state` at `version`.
    pub fn replace_order(
        &self,
        row: &OrderRow,
        state: &str,
        version: i64,
        now_s: i64,
    ) -> DbResult<bool> {
        write(&self.conn(), row, Some((state, version)), now_s)
    }

    /// The live order's body.
    pub fn order(&self, record_id: &str, now_s: i64) -> DbResult<Option<String>> {
        read(&self.conn(), record_id, now_s)
    }

    /// A batch in one transaction: reads the live body under each id, asks `refuse` whether
    /// they forbid the batch, and if not writes every row whose id is free. Returns the bodies
    /// found (`None`: free, and written unless refused) and whether it wrote.
    pub fn insert_orders(
        &self,
        rows: &[OrderRow],
        now_s: i64,
        refuse: impl FnOnce(&[Option<String>]) -> bool,
    ) -> DbResult<(Vec<Option<String>>, bool)> {
        let conn = self.conn();
        // The write lock is held before the reads, so no other writer can slip an order in
        // between what this batch saw and what it writes: through `Db::run` the batch is inside
        // the database thread's `BEGIN IMMEDIATE`; called on its own, it takes the lock first.
        if conn.is_autocommit() {
            conn.execute_batch("BEGIN IMMEDIATE")
                .ctx("writing a batch")?;
            let out = self.insert_orders_locked(&conn, rows, now_s, refuse);
            let end = if out.is_ok() { "COMMIT" } else { "ROLLBACK" };
            conn.execute_batch(end).ctx("writing a batch")?;
            return out;
        }
        self.insert_orders_locked(&conn, rows, now_s, refuse)
    }

    fn insert_orders_locked(
        &self,
        conn: &Connection,
        rows: &[OrderRow],
        now_s: i64,
        refuse: impl FnOnce(&[Option<String>]) -> bool,
    ) -> DbResult<(Vec<Option<String>>, bool)> {
        atomically(conn, "writing a batch", |tx| {
            let mut found = Vec::with_capacity(rows.len());
            for row in rows {
                found.push(read(tx, &row.record_id, now_s)?);
            }
            if refuse(&found) {
                return Ok((found, false));
            }
            for (row, existing) in rows.iter().zip(&found) {
                if existing.is_none() {
                    write(tx, row, None, now_s)?;
                }
            }
            Ok((found, true))
        })
    }

    /// The sweeper's claim: moves the order's due index entry from `seen_ms` to `next_ms` and
    /// counts the sweep, if the entry is still at `seen_ms`.
    pub fn claim_sweep(&self, record_id: &str, seen_ms: i64, next_ms: i64) -> DbResult<bool> {
        self.conn()
            .prepare_cached(
                "UPDATE orders SET due_at = ?1, sweeps = sweeps + 1
                 WHERE record_id = ?2 AND due_at = ?3",
            )
            .and_then(|mut st| st.execute(params![next_ms, record_id, seen_ms]))
            .map(|n| n == 1)
            .ctx("claiming a sweep")
    }

    /// Up to `limit` live entries of the due index at or before `until_ms`, after `after`
    /// (due_at, record_id), earliest first.
    pub fn due_orders(
        &self,
        since_ms: i64,
        until_ms: i64,
        after: Option<(i64, String)>,
        now_s: i64,
        limit: usize,
    ) -> DbResult<Vec<DueRow>> {
        // Where the index is entered: after `after`, or at `since` (the rows due at `since`
        // itself are then passed over by `due_at > since`).
        let start = (since_ms, String::new());
        let (after_at, after_id) = after.filter(|a| *a > start).unwrap_or(start);
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(DUE_ORDERS)
            .ctx("reading the due index")?;
        stmt.query_map(
            params![until_ms, after_at, after_id, now_s, since_ms],
            |r| {
                Ok(DueRow {
                    record_id: r.get(0)?,
                    attempt: r.get(1)?,
                    due_at: r.get(2)?,
                    sweeps: r.get(3)?,
                })
            },
        )
        .ctx("reading the due index")?
        .take(limit)
        .collect::<Result<_, _>>()
        .ctx("reading the due index")
    }

    /// Live orders per state; of them, how many `f` selects, and the newest `f.limit` of those.
    /// Orders past their TTL are left out, as reads leave them out.
    pub fn list_orders(&self, f: &OrderFilter, now_s: i64) -> DbResult<OrderList> {
        let conn = self.conn();
        let mut counts = conn.prepare_cached(LIST_COUNTS).ctx("counting orders")?;
        let rows = counts
            .query_map(params![now_s, f.market, f.zone, f.day], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .ctx("counting orders")?
            .collect::<Result<Vec<_>, _>>()
            .ctx("counting orders")?;
        let total = rows
            .iter()
            .filter(|(state, ..)| f.state.as_ref().is_none_or(|s| s == state))
            .map(|(.., n)| n)
            .sum();
        let by_state = rows.into_iter().map(|(state, n, _)| (state, n)).collect();
        let mut page = conn.prepare_cached(LIST_PAGE).ctx("listing orders")?;
        let bodies = page
            .query_map(
                params![now_s, f.state, f.market, f.zone, f.day, f.limit as i64],
                |r| r.get(0),
            )
            .ctx("listing orders")?
            .collect::<Result<_, _>>()
            .ctx("listing orders")?;
        Ok(OrderList {
            by_state,
            total,
            bodies,
        })
    }

    /// The delivery days of the stored orders, latest first.
    pub fn delivery_days(&self) -> DbResult<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT DISTINCT delivery_date AS d FROM orders WHERE d <> ''
                 ORDER BY d DESC LIMIT 60",
            )
            .ctx("listing delivery days")?;
        let rows = stmt
            .query_map([], |r| r.get(0))
            .ctx("listing delivery days")?;
        rows.collect::<Result<_, _>>().ctx("listing delivery days")
    }

    pub fn orders_by_state(&self) -> DbResult<Vec<(String, i64)>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT state, COUNT(*) FROM orders GROUP BY state ORDER BY state")
            .ctx("counting orders")?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .ctx("counting orders")?
            .collect::<Result<_, _>>()
            .ctx("counting orders")
    }

    /// Deletes orders whose TTL (epoch seconds) passed; returns how many.
    pub fn expire_orders(&self, now_s: i64) -> DbResult<usize> {
        self.conn()
            .exec("DELETE FROM orders WHERE expires_at <= ?1", [now_s])
            .ctx("expiring orders")
    }
}
