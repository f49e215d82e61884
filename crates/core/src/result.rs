//! What the auction platform publishes for one order, and the failure reasons of an order.

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::calendar::MTU_MINUTES;
use crate::market::{Market, Side, Zone};
use crate::money::{Cents, EnergyKwh, Lots, Overflow, PriceCents, notional, notional_to_cents};
use crate::order::{Order, RecordId};

/// The order-level outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    /// Everything offered was taken.
    Accepted,
    PartiallyAccepted,
    /// Nothing taken in any MTU.
    Rejected,
}

impl Outcome {
    /// Accepted or partially accepted results are stored; rejections are failures.
    pub fn is_stored(self) -> bool {
        !matches!(self, Outcome::Rejected)
    }
}

/// The result for one MTU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MtuResult {
    pub mtu_start: Timestamp,
    /// `None` when the auction found no price (one side of the market empty).
    pub clearing_price: Option<PriceCents>,
    pub offered_quantity: Lots,
    pub accepted_quantity: Lots,
    /// accepted MW × MTU length.
    pub accepted_energy_mwh: EnergyKwh,
}

/// Order totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub offered_energy_mwh: EnergyKwh,
    pub accepted_energy_mwh: EnergyKwh,
    /// Σ clearing price × accepted energy, rounded once to the cent.
    pub notional_eur: Cents,
}

/// What the platform published for one order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderResult {
    pub record_id: RecordId,
    pub market: Market,
    pub delivery_date: Date,
    pub zone: Zone,
    pub portfolio: String,
    pub side: Side,
    pub outcome: Outcome,
    /// Why nothing was accepted, when `outcome` is `REJECTED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejection_reason: Option<String>,
    pub mtus: Vec<MtuResult>,
    pub totals: Totals,
    pub published_at: Timestamp,
}

impl OrderResult {
    /// Whether `other` says the same of the order: outcome, every MTU and the totals (the
    /// publication time aside), as a final result confirming a preliminary one does.
    pub fn same_outcome(&self, other: &OrderResult) -> bool {
        (
            self.outcome,
            &self.rejection_reason,
            &self.mtus,
            &self.totals,
        ) == (
            other.outcome,
            &other.rejection_reason,
            &other.mtus,
            &other.totals,
        )
    }

    /// Builds a result from per-MTU `(clearing price, accepted quantity)` answers, in the order of
    /// `order.periods`; derives the outcome and totals. Every sum is checked: validation bounds
    /// each order so that none overflows, and a platform answer that would is an error.
    pub fn from_fills(
        order: &Order,
        fills: &[(Option<PriceCents>, Lots)],
        published_at: Timestamp,
    ) -> Result<OrderResult, Overflow> {
        let mut mtus = Vec::with_capacity(order.periods.len());
        let (mut offered_e, mut accepted_e, mut money) = (EnergyKwh(0), EnergyKwh(0), 0i128);
        let (mut offered_all, mut accepted_all) = (Lots(0), Lots(0));
        for (period, (price, accepted)) in order.periods.iter().zip(fills) {
            let offered = period.offered()?;
            let energy = accepted.energy_over(MTU_MINUTES)?;
            offered_e = offered_e.checked_add(offered.energy_over(MTU_MINUTES)?)?;
            accepted_e = accepted_e.checked_add(energy)?;
            if let Some(p) = price {
                money = money
                    .checked_add(notional(*p, energy))
                    .ok_or(Overflow("notional"))?;
            }
            offered_all = offered_all.checked_add(offered)?;
            accepted_all = accepted_all.checked_add(*accepted)?;
            mtus.push(MtuResult {
                mtu_start: period.mtu_start,
                clearing_price: *price,
                offered_quantity: offered,
                accepted_quantity: *accepted,
                accepted_energy_mwh: energy,
            });
        }
        let outcome = if accepted_all.0 == 0 {
            Outcome::Rejected
        } else if accepted_all == offered_all {
            Outcome::Accepted
        } else {
            Outcome::PartiallyAccepted
        };
        Ok(OrderResult {
            record_id: order.record_id.clone(),
            market: order.market,
            delivery_date: order.delivery_date,
            zone: order.zone,
            portfolio: order.portfolio.clone(),
            side: order.side,
            outcome,
            rejection_reason: (outcome == Outcome::Rejected)
                .then(|| "out of the money in every MTU".to_string()),
            mtus,
            totals: Totals {
                offered_energy_mwh: offered_e,
                accepted_energy_mwh: accepted_e,
                notional_eur: notional_to_cents(money)?,
            },
            published_at,
        })
    }

    /// The seed's `lambda_a` answer shape (`{"results": true, "orders": [{status, power}]}`),
    /// kept for consumers written against it; `power` is the accepted MW.
    pub fn seed_view(&self) -> serde_json::Value {
        serde_json::json!({
            "results": true,
            "orders": [{
                "status": if self.outcome.is_stored() { "accepted" } else { "rejected" },
                "power": Lots(self.mtus.iter().map(|m| m.accepted_quantity.0).max().unwrap_or(0)).to_string(),
            }]
        })
    }
}

/// Why an order failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FailureReason {
    /// The platform published results and nothing was accepted.
    Rejected,
    /// No results after MaxAttempts checks.
    ResultsTimeout,
    /// The platform refused the order (gate closed there, unknown portfolio, ...).
    InvalidAtPlatform,
    /// A handler failed after its retries (Lambda's on-failure destination).
    ProcessingError,
}

impl FailureReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::Rejected => "Rejected",
            FailureReason::ResultsTimeout => "ResultsTimeout",
            FailureReason::InvalidAtPlatform => "InvalidAtPlatform",
            FailureReason::ProcessingError => "ProcessingError",
        }
    }

    /// The reason for a person: `results did not come in time`.
    pub fn in_words(self) -> &'static str {
        match self {
            FailureReason::Rejected => "rejected by the auction",
            FailureReason::ResultsTimeout => "results did not come in time",
            FailureReason::InvalidAtPlatform => "refused by the platform",
            FailureReason::ProcessingError => "a handler failed",
        }
    }
}

impl std::fmt::Display for FailureReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure with its reason and a sentence for humans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub reason: FailureReason,
    pub message: String,
    pub failed_at: Timestamp,
}
