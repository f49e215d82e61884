//! Clearing time for one MTU of 1k, 100k and 1M steps (half buys, half sells), release build.
//!
//! `cargo bench -p energy-auction --bench clearing` prints, per size, the median and best of
//! several runs of `clear()` (the engine), and one run of the full `energy auction clear`
//! document path (JSON in, canonical JSON out) for comparison.

use std::time::{Duration, Instant};

use energy_auction::clearing::{ClearingStep, Limits, clear};
use energy_core::hash::mix64;
use energy_core::market::Side;
use energy_core::money::{Lots, PriceCents};

fn steps(n: usize) -> Vec<ClearingStep> {
    let mut x = 42u64;
    (0..n)
        .map(|i| {
            x = mix64(x);
            let buy = i % 2 == 0;
            // Buys centred above sells so the curves cross in the middle, on a 0.01 tick.
            let centre: i64 = if buy { 9_000 } else { 7_000 };
            let price = (centre + (x % 10_000) as i64 - 5_000).clamp(-50_000, 400_000);
            ClearingStep {
                id: format!("s{i:07}"),
                side: if buy { Side::Buy } else { Side::Sell },
                price: PriceCents(price),
                quantity: Lots(1 + (x >> 40) as i64 % 500),
                receipt: i as u64,
                record_id: format!("o{}", i / 20),
            }
        })
        .collect()
}

fn time<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let start = Instant::now();
    let out = f();
    (start.elapsed(), out)
}

fn main() {
    let limits = Limits {
        min_price: PriceCents(-50_000),
        max_price: PriceCents(400_000),
    };
    println!(
        "{:>10}  {:>12}  {:>12}  {:>16}  clearing",
        "steps", "median", "best", "document path"
    );
    for n in [1_000usize, 100_000, 1_000_000] {
        let input = steps(n);
        let runs = if n >= 1_000_000 { 7 } else { 21 };
        let mut times = Vec::with_capacity(runs);
        let mut last = None;
        for _ in 0..runs {
            let (t, c) = time(|| clear(&input, limits));
            times.push(t);
            last = Some(c);
        }
        times.sort();
        let c = last.expect("ran");
        let doc = serde_json::json!({ "steps": input }).to_string();
        let (doc_time, out) = time(|| energy_auction::curves::clear_document(&doc));
        assert!(out.is_ok());
        println!(
            "{n:>10}  {:>9.2} ms  {:>9.2} ms  {:>13.2} ms  {} MW at {}",
            times[runs / 2].as_secs_f64() * 1e3,
            times[0].as_secs_f64() * 1e3,
            doc_time.as_secs_f64() * 1e3,
            c.volume,
            c.price
                .map_or("no price".to_string(), |p| format!("{p} EUR/MWh")),
        );
    }
}
