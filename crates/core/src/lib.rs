//! The heart of Energy: everything that does not depend on AWS.
//!
//! A tour, in the order a request meets it:
//!
//! - [`json`] reads a request body strictly (no duplicate keys, every number's literal kept);
//!   [`validate`] reads it into [`order::Order`]s, or lists every problem with its JSON path and
//!   the market rule it breaks. The rules themselves (price limits, gate closure,
//!   delivery windows, the 15-minute MTU grid across DST) are configuration in [`calendar`];
//!   quantities are exact integers in [`money`] and closed vocabularies in [`market`].
//! - [`lifecycle`] is the order state machine (RECEIVED → PENDING → READY → STORED, or FAILED →
//!   NOTIFIED, or, withdrawn by the desk, CANCELLING → CANCELLED) and the stored record; every
//!   change is a transition checked against the diagram and written on condition of the state
//!   and version it came from; a delivery about to have an effect first claims the order.
//! - [`crash`] names the places between an effect and the state write after it, where tests
//!   stop a handler as kill -9 would.
//! - [`events`] holds the nine events on the bus; `events-schema/` holds their JSON Schemas.
//! - [`result`] is what the auction platform publishes; [`retry`] decides when to ask again;
//!   [`slack`] renders the desk's message.
//! - [`ports`] are the traits the handlers talk to the world through; [`memory`] implements every
//!   one in memory.
//!
//! The handlers themselves live in `handlers/<name>`, one crate each: a struct of exactly the
//! ports it uses, implementing [`handler::EventHandler`] (submit-order answers HTTP instead).

pub mod calendar;
pub mod crash;
pub mod events;
pub mod handler;
pub mod hash;
pub mod json;
pub mod lifecycle;
pub mod market;
pub mod memory;
pub mod money;
pub mod order;
pub mod ports;
pub mod result;
pub mod retry;
pub mod slack;
pub mod validate;
