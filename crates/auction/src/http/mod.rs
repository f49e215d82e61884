//! The auction platform over HTTP, as written down in `crates/auction/openapi.yaml`.
//!
//! [`wire`] holds the documents both sides exchange; [`server`] serves a [`crate::sim::SimPlatform`]
//! over the contract (`energy platform serve`); [`client`] is `HttpPlatform`, the core's
//! `AuctionPlatform` port over the same contract.

#[cfg(feature = "http-client")]
pub mod client;
#[cfg(feature = "http-server")]
pub mod server;
pub mod wire;
