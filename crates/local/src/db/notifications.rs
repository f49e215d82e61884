//! The notifications sent, one per key.

use rusqlite::params;

use super::{Cached, Context, Db, DbResult};

impl Db {
    /// Records a notification unless its key was recorded; true when new.
    pub fn record_notification(&self, key: &str, line: &str) -> DbResult<bool> {
        self.conn()
            .exec(
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
            .prepare_cached("SELECT line FROM notifications ORDER BY seq")
            .ctx("reading notifications")?;
        stmt.query_map([], |r| r.get(0))
            .ctx("reading notifications")?
            .collect::<Result<_, _>>()
            .ctx("reading notifications")
    }
}
