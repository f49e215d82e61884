//! The orders the simulated platform accepted, so a restart gives them back to it.

use rusqlite::{OptionalExtension, params};

use super::{Cached, Context, Db, DbResult};

impl Db {
    /// Remembers an order the platform accepted (a replacement takes a new receipt).
    pub fn platform_accept(&self, record_id: &str, body: &str) -> DbResult<()> {
        self.conn()
            .exec(
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
            .exec(
                "DELETE FROM platform_orders WHERE record_id = ?1 AND body = ?2",
                params![record_id, body],
            )
            .map(|_| ())
            .ctx("deleting a platform order")
    }

    /// Forgets the platform's order under `record_id`, whatever its body (a withdrawal); its
    /// receipt, if it held one, so a refused withdrawal can put it back in its place.
    pub fn platform_withdraw(&self, record_id: &str) -> DbResult<Option<i64>> {
        self.conn()
            .row(
                "DELETE FROM platform_orders WHERE record_id = ?1 RETURNING receipt",
                params![record_id],
                |r| r.get(0),
            )
            .optional()
            .ctx("deleting a platform order")
    }

    /// Puts back an order a withdrawal took out, with its receipt: its time priority is the one
    /// it had (the simulator kept it in memory; after a restart the book must agree).
    pub fn platform_put_back(&self, record_id: &str, receipt: i64, body: &str) -> DbResult<()> {
        self.conn()
            .exec(
                "INSERT INTO platform_orders (record_id, receipt, body) VALUES (?1, ?2, ?3)
                 ON CONFLICT (record_id) DO UPDATE SET body = excluded.body, receipt = excluded.receipt",
                params![record_id, receipt, body],
            )
            .map(|_| ())
            .ctx("putting back a platform order")
    }

    /// The platform's orders, earliest receipt first.
    pub fn platform_orders(&self) -> DbResult<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT body FROM platform_orders ORDER BY receipt")
            .ctx("reading platform orders")?;
        stmt.query_map([], |r| r.get(0))
            .ctx("reading platform orders")?
            .collect::<Result<_, _>>()
            .ctx("reading platform orders")
    }
}
