//! The rules, connections and API destinations made through the EventBridge API: one JSON
//! document per resource, keyed by kind and name (see [`crate::rules`]).

use rusqlite::params;
use serde_json::Value;

use super::{Cached, Context, Db, DbResult, atomically, json_column};

impl Db {
    /// Every stored resource: (kind, name, document).
    pub fn bus_resources(&self) -> DbResult<Vec<(String, String, Value)>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT kind, name, body FROM bus_resources ORDER BY kind, name")
            .ctx("reading the bus's resources")?;
        let rows = stmt
            .query_map([], |r| {
                let body: String = r.get(2)?;
                Ok((r.get(0)?, r.get(1)?, json_column(&body, 2)?))
            })
            .ctx("reading the bus's resources")?;
        rows.collect::<Result<_, _>>()
            .ctx("reading the bus's resources")
    }

    /// Writes one resource, or deletes it (`None`), in one transaction with the others given:
    /// a change that touches several (a rule and its targets) is all there or not at all.
    pub fn write_bus_resources(&self, changes: &[(&str, &str, Option<&Value>)]) -> DbResult<()> {
        atomically(&self.conn(), "writing the bus's resources", |tx| {
            for (kind, name, body) in changes {
                match body {
                    Some(body) => tx.exec(
                        "INSERT INTO bus_resources (kind, name, body) VALUES (?1, ?2, ?3)
                         ON CONFLICT (kind, name) DO UPDATE SET body = excluded.body",
                        params![kind, name, body.to_string()],
                    ),
                    None => tx.exec(
                        "DELETE FROM bus_resources WHERE kind = ?1 AND name = ?2",
                        params![kind, name],
                    ),
                }
                .ctx("writing the bus's resources")?;
            }
            Ok(())
        })
    }
}
