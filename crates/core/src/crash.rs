//! Crash points: the places between a side effect and the state write that follows it, where a
//! test stops a handler the way `kill -9` or a Lambda timeout would.
//!
//! Every handler calls [`point`] at each of them. In production nothing is armed and a point is
//! one relaxed atomic load. Two ways to arm one, both for tests:
//!
//! - `ENERGY_CRASH_AT=<point>` in a process's environment (`energy up`, a bootstrap): the
//!   process aborts the first time it reaches that point, with nothing flushed and no destructor
//!   run. The test then starts it again without the variable.
//! - [`arm`] in a test's own process: the next handler to reach the point panics there, so the
//!   rest of its invocation never runs; the point disarms itself. The test then redelivers the
//!   event, as Lambda's retry would.
//!
//! Each test asserts what a crash at the point must leave behind once the system has run on:
//! exactly one effect, with the right bytes, and a final state.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// The environment variable that makes a process abort at a point.
pub const ENV: &str = "ENERGY_CRASH_AT";

/// Every crash point, in the order an order meets them.
pub const POINTS: &[&str] = &[
    SUBMIT_AFTER_INSERT,
    EVALUATE_AFTER_SUBMIT,
    EVALUATE_AFTER_SCHEDULE,
    EVALUATE_AFTER_PRELIMINARY,
    EVALUATE_AFTER_READY,
    EVALUATE_AFTER_WITHDRAW,
    EVALUATE_AFTER_CANCELLED,
    STORE_AFTER_PUT,
    STORE_AFTER_PUBLISH,
    AFTER_FAIL,
    NOTIFY_AFTER_CLAIM,
    NOTIFY_AFTER_POST,
];

/// submit-order: the orders are stored, `OrderSubmitted` is not published yet.
pub const SUBMIT_AFTER_INSERT: &str = "submit-order.after-insert";
/// evaluate-order: the platform has the order, no check is scheduled, the order is RECEIVED.
pub const EVALUATE_AFTER_SUBMIT: &str = "evaluate-order.after-submit";
/// evaluate-order: the check is scheduled, the order has not moved.
pub const EVALUATE_AFTER_SCHEDULE: &str = "evaluate-order.after-schedule";
/// evaluate-order: the order keeps a new or withdrawn preliminary result, not yet announced.
pub const EVALUATE_AFTER_PRELIMINARY: &str = "evaluate-order.after-preliminary";
/// evaluate-order: the order is READY, `OrderReady` is not published yet.
pub const EVALUATE_AFTER_READY: &str = "evaluate-order.after-ready";
/// evaluate-order: the platform withdrew the order, it is still CANCELLING.
pub const EVALUATE_AFTER_WITHDRAW: &str = "evaluate-order.after-withdraw";
/// evaluate-order: `OrderCancelled` is published, the order is still CANCELLING.
pub const EVALUATE_AFTER_CANCELLED: &str = "evaluate-order.after-cancelled";
/// store-result: the result object is written, `OrderResultStored` is not published.
pub const STORE_AFTER_PUT: &str = "store-result.after-put";
/// store-result: `OrderResultStored` is published, the order is still READY.
pub const STORE_AFTER_PUBLISH: &str = "store-result.after-publish";
/// Any handler: the order is FAILED, `OrderFailed` is not published yet.
pub const AFTER_FAIL: &str = "after-fail";
/// notify-slack: the order is claimed for its message, nothing is sent yet.
pub const NOTIFY_AFTER_CLAIM: &str = "notify-slack.after-claim";
/// notify-slack: the message is sent, the order is not NOTIFIED yet.
pub const NOTIFY_AFTER_POST: &str = "notify-slack.after-post";

static ARMED_ANY: AtomicBool = AtomicBool::new(false);
static ARMED: Mutex<Option<&'static str>> = Mutex::new(None);
static FROM_ENV: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

/// The point `ENERGY_CRASH_AT` names. A value that names no point stops the process at once:
/// a crash test with a typo must not pass by never crashing.
fn from_env() -> Option<&'static str> {
    FROM_ENV
        .get_or_init(|| {
            let named = std::env::var(ENV).ok().filter(|p| !p.is_empty())?;
            if !POINTS.contains(&named.as_str()) {
                eprintln!(
                    "{ENV}={named:?} names no crash point; the points are: {}",
                    POINTS.join(", ")
                );
                std::process::abort();
            }
            Some(named)
        })
        .as_deref()
}

/// Checks `ENERGY_CRASH_AT` at start-up: an error naming the points if it is set to something
/// that is not one (a typo would otherwise make a crash test pass by never crashing).
pub fn check_env() -> Result<(), String> {
    match std::env::var(ENV) {
        Ok(named) if !named.is_empty() && !POINTS.contains(&named.as_str()) => Err(format!(
            "{ENV}={named:?} names no crash point; the points are: {}",
            POINTS.join(", ")
        )),
        _ => Ok(()),
    }
}

/// Arms `name` in this process: the next handler to reach it panics there.
///
/// # Panics
/// If `name` is not one of [`POINTS`], so a typo cannot arm nothing.
pub fn arm(name: &'static str) {
    assert!(POINTS.contains(&name), "no crash point {name:?}");
    *ARMED.lock().unwrap_or_else(|e| e.into_inner()) = Some(name);
    ARMED_ANY.store(true, Ordering::SeqCst);
}

/// Whether a point armed with [`arm`] is still waiting to be reached.
pub fn pending() -> bool {
    ARMED_ANY.load(Ordering::SeqCst)
}

/// Marks crash point `name`: aborts the process if `ENERGY_CRASH_AT` names it, panics if a test
/// armed it, else does nothing.
pub fn point(name: &'static str) {
    debug_assert!(POINTS.contains(&name), "undeclared crash point {name}");
    if from_env() == Some(name) {
        eprintln!("crash point {name}: aborting as {ENV} asks");
        std::process::abort();
    }
    if !ARMED_ANY.load(Ordering::Relaxed) {
        return;
    }
    let mut armed = ARMED.lock().unwrap_or_else(|e| e.into_inner());
    if *armed == Some(name) {
        *armed = None;
        ARMED_ANY.store(false, Ordering::SeqCst);
        drop(armed);
        panic!("crash point {name}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_armed_point_panics_once_and_others_pass() {
        arm(STORE_AFTER_PUT);
        point(STORE_AFTER_PUBLISH);
        assert!(pending());
        let hit = std::panic::catch_unwind(|| point(STORE_AFTER_PUT));
        assert!(hit.is_err());
        assert!(!pending());
        point(STORE_AFTER_PUT);
    }

    #[test]
    #[should_panic(expected = "no crash point")]
    fn arming_an_unknown_point_is_refused() {
        arm("store-result.after-pt");
    }
}
