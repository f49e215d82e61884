//! The `energy` command: the whole Energy system on one machine.
//!
//! - [`topology`] reads the routing from `template.yaml` and matches events with the
//!   `energy-patterns` crate; [`consumers`] adds local rules with HTTP targets; [`rules`] holds
//!   the rules, connections and API destinations made through `energy up`'s EventBridge API.
//! - [`handlers`] builds the five handler crates from a stack's adapters and invokes them the way
//!   Lambda does; [`delivery`] is the one delivery engine (retries, maximum age, on-failure
//!   destinations as the template sets them) of both local stacks.
//! - [`up`] is `energy up`: the HTTP API, the bus, the scheduler, the sweeper and the simulated
//!   platform on an embedded database ([`db`]), durable across crashes. The same choreography in
//!   memory, on a clock that jumps to the next due instant, is test support
//!   (`tests/common/system.rs`).
//! - [`demo`] drives one order of every outcome through `energy up` and prints what happens.
//! - [`platform`] serves the simulated auction platform over HTTP.

pub mod cli;
pub mod consumers;
pub mod db;
pub mod delivery;
pub mod demo;
pub mod function;
pub mod handlers;
pub mod platform;
pub mod rules;
pub mod topology;
pub mod up;
