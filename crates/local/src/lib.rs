//! The `energy` command: the whole Energy system on one machine.
//!
//! - [`topology`] reads the routing from `template.yaml` and matches events with the
//!   `energy-patterns` crate; [`consumers`] adds local rules with HTTP targets.
//! - [`handlers`] invokes the five handler crates the way Lambda does.
//! - [`up`] is `energy up`: the HTTP API, the bus, the scheduler, the sweeper and the simulated
//!   platform on an embedded database ([`db`]), durable across crashes.
//! - [`system`] is the same choreography in memory on a clock that jumps to the next due instant
//!   (the fast tests use it).
//! - [`demo`] drives one order of every outcome through `energy up` and prints what happens.
//! - [`platform`] serves the simulated auction platform over HTTP.

pub mod cli;
pub mod consumers;
pub mod db;
pub mod demo;
pub mod handlers;
pub mod platform;
pub mod routes;
pub mod system;
pub mod topology;
pub mod up;
