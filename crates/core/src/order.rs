//! An order as the desk submits it, after validation.
//!
//! Build one with [`crate::validate::parse_batch`], which checks every market rule; the fields are
//! public so that adapters can read them, and the serde form is the one stored and answered by
//! `GET /orders/{record_id}`.

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::calendar::AuctionId;
use crate::market::{Market, Side, Zone};
use crate::money::{Lots, PriceCents};

/// The client-chosen idempotency key: `[A-Za-z0-9_.:-]{1,64}`, but not `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RecordId(String);

impl RecordId {
    pub const MAX_LEN: usize = 64;

    /// Checks the syntax; the error says what is wrong.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.len() > Self::MAX_LEN {
            return Err(format!(
                "must be 1 to {} characters, got {}",
                Self::MAX_LEN,
                s.len()
            ));
        }
        if let Some(c) = s.chars().find(|c| !is_id_char(*c)) {
            return Err(format!("{c:?} is not allowed (use A-Z a-z 0-9 _ . : -)"));
        }
        if s == "." || s == ".." {
            return Err(format!(
                "{s:?} is not allowed: no URL can name it (GET, PUT and DELETE /orders/{{record_id}} would mean another path)"
            ));
        }
        Ok(RecordId(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Characters allowed in record ids and portfolio names.
pub fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-')
}

impl std::fmt::Display for RecordId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One price/quantity step: buy up to `quantity` at `price` or better (sell: at `price` or more).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub price: PriceCents,
    pub quantity: Lots,
}

/// The curve for one MTU. Sell prices strictly ascend, buy prices strictly descend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub mtu_start: Timestamp,
    pub steps: Vec<Step>,
}

impl Period {
    /// Everything offered in this MTU, checked.
    pub fn offered(&self) -> Result<Lots, crate::money::Overflow> {
        self.steps
            .iter()
            .try_fold(Lots(0), |sum, s| sum.checked_add(s.quantity))
    }
}

/// A validated order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub record_id: RecordId,
    pub market: Market,
    pub delivery_date: Date,
    pub zone: Zone,
    pub portfolio: String,
    pub side: Side,
    /// Sorted by `mtu_start`, no duplicates.
    pub periods: Vec<Period>,
}

impl Order {
    pub fn auction(&self) -> AuctionId {
        AuctionId {
            market: self.market,
            delivery_date: self.delivery_date,
        }
    }

    /// The deterministic object key of this order's result: a repeated write replaces the same
    /// object with the same bytes.
    pub fn result_key(&self) -> String {
        format!(
            "results/{}/{}/{}.json",
            self.delivery_date, self.zone, self.record_id
        )
    }
}

#[cfg(test)]
mod record_id_tests {
    use super::RecordId;

    #[test]
    fn dot_and_dot_dot_are_refused_because_no_url_can_name_them() {
        for id in [".", ".."] {
            let why = RecordId::parse(id).unwrap_err();
            assert!(why.contains("URL"), "{id}: {why}");
        }
        for id in ["...", ".a", "a..b", "x."] {
            assert!(RecordId::parse(id).is_ok(), "{id}");
        }
    }
}
