//! The `energy` command: the whole Energy system on one machine.
//!
//! - [`system`] wires the five handler crates over the core's in-memory ports, with a bus that
//!   routes like `template.yaml` ([`routes`]), a scheduler, the sweep rule and Lambda's
//!   asynchronous retry and on-failure behaviour, on a clock that jumps to the next due instant.
//! - [`demo`] drives one order of every outcome through it and prints what happens.
//! - [`platform`] serves the simulated auction platform over HTTP.

pub mod demo;
pub mod platform;
pub mod routes;
pub mod system;
