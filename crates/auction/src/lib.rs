//! The auction platform side of Energy.
//!
//! - [`calendar`]: gate closure, expected publication, delivery window and MTU grid of SDAC and
//!   IDA1–3, in UTC, computed in Europe/Brussels time across DST. It lives in `energy-core`
//!   (order validation needs it) and is re-exported here.
//! - [`clearing`]: uniform-price clearing of one MTU over step curves, in integers.
//! - [`synthetic`]: a deterministic, plausible market per auction, zone and MTU.
//! - [`sim`]: `SimPlatform`, the simulated platform behind the core's `AuctionPlatform` port.
//! - [`curves`]: the JSON formats of `energy auction clear`.
//! - [`http`]: the platform contract over HTTP (`openapi.yaml`): its documents, a server for the
//!   simulator (feature `http-server`) and `HttpPlatform`, the client (feature `http-client`).
//! - [`clock`]: a fast clock for demos.

pub use energy_core::calendar;

pub mod clearing;
pub mod clock;
pub mod curves;
pub mod http;
pub mod sim;
pub mod synthetic;
