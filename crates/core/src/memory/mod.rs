//! In-memory implementations of the ports, for the handlers' own tests and the in-memory stack of
//! `energy-local`'s tests; [`fixtures`] makes orders, records and events for them. The in-memory
//! auction platform is `energy-auction`'s `SimPlatform`. Each keeps what a test wants to count
//! (writes, schedules, objects, messages) and can be told to fail, so the unhappy paths are
//! tested as easily as the happy one.

mod bus;
mod clock;
pub mod fixtures;
mod lockstep;
mod notifier;
mod recording;
mod results;
mod scheduler;
mod store;

pub use bus::InMemoryBus;
pub use clock::ManualClock;
pub use lockstep::Lockstep;
pub use notifier::InMemoryNotifier;
pub use recording::{RecordingNotifier, RecordingResults};
pub use results::InMemoryResults;
pub use scheduler::{InMemoryScheduler, PendingSchedule};
pub use store::InMemoryOrderStore;

use std::sync::{Mutex, MutexGuard};

/// Locks a mutex, recovering the data if a panicking test poisoned it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
