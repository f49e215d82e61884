//! The orders the simulated platform accepted, so a restart gives them back to it.

use rusqlite::params;

use super::{Context, Db, DbResult};

impl Db {
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

    /// Forgets the platform's order under `record_id`, whatever its body (a withdrawal).
    pub fn platform_withdraw(&self, record_id: &str) -> DbResult<()> {
        self.conn()
            .execute(
                "DELETE FROM platform_orders WHERE record_id = ?1",
                params![record_id],
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
}
