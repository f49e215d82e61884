//! Prices and quantities read from a document as `PriceCents` and `Lots` read them from a
//! `serde_json::Value`, without building one: the money module's own reader, a string or a
//! number straight from the reader.

pub(super) use energy_core::money::{Scaled as Decimal, plain_decimal};
