//! The database of `energy up` under a sustained load: its database thread commits every few
//! milliseconds (see `Db::run_early`) and a checkpointer thread copies the write-ahead log into
//! the database file every 200 ms; the database thread's own checkpoint at 2 000 log pages, which
//! then finds little left to copy, starts the log again.
//!
//! The market clock starts at 09:00 Brussels time (08:00Z) on 2026-11-27 at 1×: the SDAC gate
//! for delivery day 2026-11-28 closes three real hours away, so every order posted is taken.

#[path = "common/up.rs"]
mod up;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const START: &str = "2026-11-27T08:00:00Z";

/// An SDAC buy for 2026-11-28 that the platform accepts.
fn order(id: &str) -> Value {
    json!({
        "record_id": id,
        "market": "SDAC",
        "delivery_date": "2026-11-28",
        "zone": "DE-LU",
        "portfolio": "LOAD",
        "side": "BUY",
        "periods": [{"mtu_start": "2026-11-28T06:00:00Z",
                     "steps": [{"price": "3000.00", "quantity": "1.0"}]}]
    })
}

/// Posts batches of fresh orders from `clients` connections until `stop`; counts the accepted.
fn flood(
    up: &up::Up,
    clients: usize,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..clients)
        .map(|c| {
            let (url, stop, accepted) = (up.url("/orders"), stop.clone(), accepted.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let batch: Vec<Value> = (0..20)
                        .map(|i| order(&format!("load-{c}-{n}-{i}")))
                        .collect();
                    n += 1;
                    if let Ok(r) = http.post(&url).json(&batch).send().await
                        && r.status().as_u16() == 202
                    {
                        accepted.fetch_add(batch.len(), Ordering::Relaxed);
                    }
                }
            })
        })
        .collect()
}

/// The write-ahead log under a flood of orders stays short. With the database thread's own
/// checkpoint at 10 000 pages of 4 KiB, the only one that ever started the log again under a
/// steady load, the `-wal` file reached 40 MiB and more, and SQLite never shrank it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_ahead_log_stays_short_under_a_flood_of_orders() {
    let dir = up::data_dir("wal-under-load");
    let stack = up::start(&dir, &["--start", START]);
    let wal = dir.join("energy.db-wal");
    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicUsize::new(0));
    let clients = flood(&stack, 4, stop.clone(), accepted.clone());
    let began = Instant::now();
    let mut largest = 0;
    while began.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.await;
    }
    let accepted = accepted.load(Ordering::Relaxed);
    drop(stack);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(accepted > 0, "the flood got no order in");
    const MIB: u64 = 1024 * 1024;
    assert!(
        largest < 16 * MIB,
        "the write-ahead log reached {:.1} MiB while {accepted} orders came in over 5 s",
        largest as f64 / MIB as f64
    );
}
