//! 10k orders through a real `energy up`: POST throughput, then the POST-to-final-state latency
//! (which includes the wait for the auction's results, compressed by the market clock), the
//! preliminary publication to `OrderPreliminaryResult` latency, and the final publication to
//! final-state latency (the stack's own work once the final results are out), p50 and p99.
//!
//! `cargo bench -p energy-local --bench up [-- --orders N --speed S --concurrency C --clients K
//! --console T]`
//!
//! `--console T` keeps T console tabs open on the orders page for the whole run: each asks for
//! the live order list every second, as the console's script does, and the bench prints how
//! long those answers took.
//!
//! Also prints the rounds of checks and what the safety nets did: result checks of one order by
//! trigger (sweep-triggered ones should be a small fraction of the orders), failed orders by
//! reason, deliveries still queued once every order is final, and the database's size.
//!
//! `ENERGY_BENCH_KEEP=1` keeps the data dir, to look into it afterwards, or to compare runs on a
//! disk: deleting the 10 000 result files leaves ext4 slow to create files for some minutes
//! (the bench prints what a file creation costs before it starts), which the next run then
//! measures.

#[path = "../tests/common/up.rs"]
mod up;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

struct Options {
    orders: usize,
    speed: u32,
    concurrency: usize,
    /// POST requests in flight at once.
    clients: usize,
    /// Console tabs open on the orders page.
    console: usize,
}

fn options() -> Options {
    let get = up::arg;
    Options {
        orders: get("--orders", 10_000),
        speed: get("--speed", 200) as u32,
        concurrency: get("--concurrency", energy_local::up::DELIVERIES_IN_FLIGHT),
        clients: get("--clients", 4).max(1),
        console: get("--console", 0),
    }
}

/// Accepted SDAC buys for 2026-11-28, spread over zones and the day's quarter-hours.
fn order(i: usize) -> Value {
    let zones = ["DE-LU", "NL", "BE", "FR", "AT", "PL", "NO1", "SE3"];
    let first: Timestamp = "2026-11-27T23:00:00Z".parse().unwrap();
    let mtu = first + SignedDuration::from_mins(15 * (i % 96) as i64);
    json!({
        "record_id": format!("bench-{i}"),
        "market": "SDAC",
        "delivery_date": "2026-11-28",
        "zone": zones[i % zones.len()],
        "portfolio": "BENCH",
        "side": "BUY",
        "periods": [{"mtu_start": mtu.to_string(), "steps": [{"price": "3000.00", "quantity": "1.0"}]}]
    })
}

/// `tabs` console tabs on the orders page, each asking for its live list every second (as
/// `console.js` does, one request at a time) until `stop`; answers the answers' times in ms.
fn console_tabs(
    url: String,
    tabs: usize,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<Vec<f64>> {
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        let tabs = (0..tabs).map(|_| {
            let (http, url, stop) = (http.clone(), url.clone(), stop.clone());
            tokio::spawn(async move {
                let mut took = Vec::new();
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    tick.tick().await;
                    let asked = Instant::now();
                    let r = http.get(&url).send().await.expect("GET the console's list");
                    assert!(
                        r.status().is_success(),
                        "the console answered {}",
                        r.status()
                    );
                    let _ = r.bytes().await;
                    took.push(asked.elapsed().as_secs_f64() * 1000.0);
                }
                took
            })
        });
        let mut all = Vec::new();
        for tab in tabs.collect::<Vec<_>>() {
            all.extend(tab.await.expect("a console tab"));
        }
        all
    })
}

/// Whether the stack still answers (it holds the database open while it runs).
fn stack_alive(dir: &std::path::Path) -> bool {
    dir.join("energy.db").exists()
}

/// For each order with an event of `detail_type`, how long after `since` (wall) its first one
/// was published, in ms, sorted.
fn first_published(db: &rusqlite::Connection, detail_type: &str, since: Timestamp) -> Vec<i64> {
    let mut stmt = db
        .prepare("SELECT MIN(published_at) FROM events WHERE detail_type = ?1 GROUP BY record_id")
        .unwrap();
    let mut after: Vec<i64> = stmt
        .query_map([detail_type], |r| r.get::<_, i64>(0))
        .unwrap()
        .map(|t| t.unwrap() - since.as_millisecond())
        .collect();
    after.sort_unstable();
    after
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// How long creating a file takes beside `dir` now, in µs per file: 8 threads each writing 250
/// small files into one folder, as store-result's writes do. The file system's state weighs on
/// the result writes: ext4 without a journal skips, when it allocates an inode, every inode
/// deleted in the last minutes (`recently_deleted`), under the folder's lock; after a mass
/// delete (another run's data dir) a create costs 15 to 40 times as much for minutes.
fn file_create_micros(dir: &std::path::Path) -> (f64, std::path::PathBuf) {
    let probe = dir.with_file_name(format!(
        "{}-fs-probe",
        dir.file_name().and_then(|n| n.to_str()).unwrap_or("energy")
    ));
    std::fs::create_dir_all(&probe).expect("create the probe folder");
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..8 {
            let probe = &probe;
            s.spawn(move || {
                for i in 0..250 {
                    std::fs::write(probe.join(format!("{t}-{i}.json")), b"{}")
                        .expect("write a probe file");
                }
            });
        }
    });
    // Kept until the end of the run: deleting them now would slow the run's own creates.
    (started.elapsed().as_secs_f64() * 1e6 / 2000.0, probe)
}

#[tokio::main]
async fn main() {
    let o = options();
    let dir = up::data_dir("bench");
    let (create, probe) = file_create_micros(&dir);
    // 11:00 Brussels time on 2026-11-27: the SDAC gate closes an hour (of market time) later.
    let concurrency = o.concurrency.to_string();
    let speed = o.speed.to_string();
    let stack = up::start(
        &dir,
        &[
            "--start",
            "2026-11-27T10:00:00Z",
            "--speed",
            &speed,
            "--concurrency",
            &concurrency,
        ],
    );
    println!(
        "energy up: {} orders, market clock {}×, {} deliveries in flight, data in {}",
        o.orders,
        o.speed,
        o.concurrency,
        dir.display()
    );
    println!(
        "file creation beside the data dir before the run: {create:.0} µs a file (8 writers, one folder; see file_create_micros)"
    );
    let http = reqwest::Client::new();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let console = (o.console > 0)
        .then(|| console_tabs(stack.url("/console/live/orders"), o.console, stop.clone()));
    let started = Instant::now();
    let mut posted_at: HashMap<String, i64> = HashMap::new();
    let batches: Vec<Vec<Value>> = (0..o.orders)
        .map(order)
        .collect::<Vec<_>>()
        .chunks(100)
        .map(|c| c.to_vec())
        .collect();
    let mut refused = 0usize;
    for group in batches.chunks(o.clients) {
        let mut calls = Vec::new();
        for batch in group {
            let http = http.clone();
            let url = stack.url("/orders");
            let body = Value::Array(batch.clone()).to_string();
            calls.push(tokio::spawn(async move {
                let r = http
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .expect("POST /orders");
                let status = r.status().as_u16();
                let v: Value = r.json().await.unwrap_or(Value::Null);
                (status, v, Timestamp::now().as_millisecond())
            }));
        }
        for call in calls {
            let (status, v, at) = call.await.unwrap();
            if status != 202 {
                refused += 1;
                let text: String = v.to_string().chars().take(300).collect();
                eprintln!("POST answered {status}: {text}");
                continue;
            }
            for s in v["orders"].as_array().into_iter().flatten() {
                posted_at.insert(s["record_id"].as_str().unwrap().to_string(), at);
            }
        }
        eprint!("\r  posted {}/{}", posted_at.len(), o.orders);
    }
    let post_secs = started.elapsed().as_secs_f64();
    eprintln!();
    println!(
        "POST /orders: {} orders in {:.2} s = {:.0} orders/s ({} requests of 100 refused)",
        posted_at.len(),
        post_secs,
        posted_at.len() as f64 / post_secs,
        refused
    );

    assert!(!posted_at.is_empty(), "no order was accepted");
    // Wait until every order is final: the stored-result events, read from the archive.
    let db = rusqlite::Connection::open(dir.join("energy.db")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(900);
    // (wall ms, the stack's CPU seconds, its database thread's) at each look: the CPU the final
    // phase took. The database thread does every write, so it is where the stack saturates.
    let mut cpu: Vec<(i64, f64, Option<f64>)> = Vec::new();
    let finals: HashMap<String, i64> = loop {
        if let Some(used) = stack.cpu_seconds() {
            let db_thread = stack.thread_cpu_seconds("energy-db");
            cpu.push((Timestamp::now().as_millisecond(), used, db_thread));
        }
        let mut stmt = db
            .prepare(
                "SELECT record_id, MIN(published_at) FROM events
                 WHERE detail_type IN ('OrderResultStored', 'OrderFailed') GROUP BY record_id",
            )
            .unwrap();
        let rows: HashMap<String, i64> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        eprint!("\r  final {}/{}", rows.len(), posted_at.len());
        if rows.len() >= posted_at.len() {
            break rows;
        }
        assert!(
            stack_alive(&dir),
            "energy up stopped before every order was final"
        );
        assert!(Instant::now() < deadline, "not final after 15 minutes");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    eprintln!();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let console = match console {
        Some(tabs) => tabs.await.expect("the console tabs"),
        None => Vec::new(),
    };
    // The market clock's anchor: when (wall) the results were published.
    let clock: String = db
        .query_row("SELECT value FROM meta WHERE key = 'clock'", [], |r| {
            r.get(0)
        })
        .unwrap();
    let mut parts = clock.split(' ');
    let real: Timestamp = parts.next().unwrap().parse().unwrap();
    let market: Timestamp = parts.next().unwrap().parse().unwrap();
    // SDAC publishes preliminary results at 12:45 Brussels time and final ones at 13:00 (the
    // gate plus an hour): an order turns final once the final ones are out, so the stack's own
    // work is measured from then.
    let wall_at = |market_at: &str| {
        let at: Timestamp = market_at.parse().unwrap();
        real + SignedDuration::from_nanos(
            (at.duration_since(market).as_nanos() / i128::from(o.speed)) as i64,
        )
    };
    let preliminary_wall = wall_at("2026-11-27T11:45:00Z");
    let published_wall = wall_at("2026-11-27T12:00:00Z");
    let mut post_to_final: Vec<i64> = posted_at.iter().map(|(id, at)| finals[id] - at).collect();
    post_to_final.sort_unstable();
    let mut pub_to_final: Vec<i64> = finals
        .values()
        .map(|f| f - published_wall.as_millisecond())
        .collect();
    pub_to_final.sort_unstable();
    let last = *pub_to_final.last().unwrap_or(&0);
    let mut posted: Vec<i64> = posted_at.values().copied().collect();
    posted.sort_unstable();
    let wait = (published_wall.as_millisecond() - percentile(&posted, 0.5)) as f64 / 1000.0;
    let pub_to_preliminary = first_published(&db, "OrderPreliminaryResult", preliminary_wall);
    // Evaluate-order's share of the final phase: when each order's OrderReady was published.
    let pub_to_ready = first_published(&db, "OrderReady", published_wall);
    println!(
        "POST to final state: p50 {:.2} s, p99 {:.2} s (of which {wait:.1} s is the wait for the 13:00 final results at {}×)",
        percentile(&post_to_final, 0.5) as f64 / 1000.0,
        percentile(&post_to_final, 0.99) as f64 / 1000.0,
        o.speed
    );
    println!(
        "preliminary results (12:45) to OrderPreliminaryResult: p50 {:.2} s, p99 {:.2} s, for {} orders",
        percentile(&pub_to_preliminary, 0.5) as f64 / 1000.0,
        percentile(&pub_to_preliminary, 0.99) as f64 / 1000.0,
        pub_to_preliminary.len()
    );
    println!(
        "final results (13:00) to final state: p50 {:.2} s, p99 {:.2} s; all {} final {:.2} s after publication = {:.0} orders/s through evaluate-order and store-result",
        percentile(&pub_to_final, 0.5) as f64 / 1000.0,
        percentile(&pub_to_final, 0.99) as f64 / 1000.0,
        finals.len(),
        last as f64 / 1000.0,
        finals.len() as f64 / (last.max(1) as f64 / 1000.0)
    );
    println!(
        "final results (13:00) to OrderReady (evaluate-order's share): p50 {:.2} s, p99 {:.2} s, for {} orders",
        percentile(&pub_to_ready, 0.5) as f64 / 1000.0,
        percentile(&pub_to_ready, 0.99) as f64 / 1000.0,
        pub_to_ready.len()
    );
    // The stack's CPU from the last look before the final results to the first look that found
    // every order final: what the final phase cost, whatever else ran on the machine.
    let before = cpu
        .iter()
        .rev()
        .find(|(at, ..)| *at <= published_wall.as_millisecond());
    if let (Some((from, start, db_start)), Some((to, end, db_end))) = (before, cpu.last()) {
        let wall = (to - from).max(1) as f64 / 1000.0;
        println!(
            "the stack's CPU in the final phase: {:.0} µs per order ({:.2} s over {:.2} s of wall time, {:.2} cores busy)",
            (end - start) * 1e6 / finals.len().max(1) as f64,
            end - start,
            wall,
            (end - start) / wall
        );
        if let (Some(db_start), Some(db_end)) = (db_start, db_end) {
            println!(
                "  of which the database thread: {:.0} µs per order, on a core {:.0} % of that wall time",
                (db_end - db_start) * 1e6 / finals.len().max(1) as f64,
                (db_end - db_start) * 100.0 / wall
            );
        }
    }
    if !console.is_empty() {
        let mut ms: Vec<i64> = console.iter().map(|t| (t * 1000.0) as i64).collect();
        ms.sort_unstable();
        println!(
            "console: {} tab(s) on the orders page, {} answers of the live list: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            o.console,
            ms.len(),
            percentile(&ms, 0.5) as f64 / 1000.0,
            percentile(&ms, 0.99) as f64 / 1000.0,
            *ms.last().unwrap_or(&0) as f64 / 1000.0
        );
    }
    let mut stmt = db
        .prepare(
            "SELECT detail_type, COALESCE(json_extract(body, '$.detail.reason'), ''), COUNT(*)
             FROM events WHERE detail_type IN ('OrderResultStored', 'OrderFailed')
             GROUP BY 1, 2 ORDER BY 1, 2",
        )
        .unwrap();
    let outcomes: Vec<String> = stmt
        .query_map([], |r| {
            let (t, reason, n): (String, String, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            Ok(format!(
                "{t}{} {n}",
                if reason.is_empty() {
                    String::new()
                } else {
                    format!("({reason})")
                }
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    println!("outcomes: {}", outcomes.join(", "));
    let mut stmt = db
        .prepare(
            "SELECT json_extract(body, '$.detail.trigger'), COUNT(*) FROM events
             WHERE detail_type = 'OrderEvaluationDue' GROUP BY 1 ORDER BY 1",
        )
        .unwrap();
    let checks: Vec<String> = stmt
        .query_map([], |r| {
            Ok(format!(
                "{} {}",
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    println!(
        "result checks of one order by trigger: {}",
        if checks.is_empty() {
            "none".to_string()
        } else {
            checks.join(", ")
        }
    );
    let (rounds, continued): (i64, i64) = db
        .query_row(
            "SELECT COUNT(*), COUNT(json_extract(body, '$.detail.after')) FROM events
             WHERE detail_type = 'OrderChecksDue'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    println!(
        "rounds of checks: {} (schedules fired), and {continued} continuations of a round",
        rounds - continued
    );
    let swept: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM events WHERE detail_type = 'OrderEvaluationDue'
             AND json_extract(body, '$.detail.trigger') = 'SWEEP'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    println!(
        "sweep-triggered evaluations: {swept} ({:.2} % of {} orders)",
        swept as f64 * 100.0 / finals.len().max(1) as f64,
        finals.len()
    );
    let queued = |db: &rusqlite::Connection| -> i64 {
        db.query_row(
            "SELECT COUNT(*) FROM deliveries WHERE state = 'pending'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    let at_final = queued(&db);
    // What is still queued then is work for orders already final; give it two sweep periods of
    // the stack's wall time to drain, then count again.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let later = queued(&db);
    let failed: i64 = db
        .query_row(
            "SELECT COUNT(DISTINCT record_id) FROM events WHERE detail_type = 'OrderFailed'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let size = std::fs::metadata(dir.join("energy.db")).map_or(0, |m| m.len())
        + std::fs::metadata(dir.join("energy.db-wal")).map_or(0, |m| m.len());
    println!(
        "failed orders: {failed} of {}; deliveries queued when all were final: {at_final}, 12 s later: {later}; database {:.1} MB",
        finals.len(),
        size as f64 / 1e6
    );
    drop(stack);
    if std::env::var_os("ENERGY_BENCH_KEEP").is_some_and(|v| v == "1") {
        println!("kept: {} and {}", dir.display(), probe.display());
    } else {
        let _ = std::fs::remove_dir_all(dir);
        let _ = std::fs::remove_dir_all(probe);
    }
}
