//! The JSON formats of `energy auction clear`: step curves in, clearing results out.
//!
//! Input: one MTU (`{"steps": [...]}`), several (`{"mtus": [{"mtu": "...", "steps": [...]}]}` or a
//! bare array of those), each step `{"id", "side", "price", "quantity"}` with optional `receipt`
//! and `record_id` for the tie-break; optional `"market"` (limits of that market, SDAC by
//! default) or explicit `"limits": {"min_price", "max_price"}`.
//!
//! Output: an array with one entry per MTU, in input order: `mtu`, `clearing_price` (or null),
//! `volume`, `price_interval`, and `fills`, every step with what it got, sorted by step id so
//! the same steps in any order print the same bytes.

use std::collections::HashSet;

use energy_core::calendar::MarketRules;
use energy_core::market::{Market, Side};
use energy_core::money::{Lots, PriceCents};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clearing::{ClearingStep, Limits, clear};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MtuInput {
    #[serde(default)]
    mtu: Option<String>,
    steps: Vec<ClearingStep>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileInput {
    #[serde(default)]
    market: Option<Market>,
    #[serde(default)]
    limits: Option<Limits>,
    #[serde(default)]
    mtus: Option<Vec<MtuInput>>,
    #[serde(default)]
    mtu: Option<String>,
    #[serde(default)]
    steps: Option<Vec<ClearingStep>>,
}

/// One step's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepFill {
    pub id: String,
    pub side: Side,
    pub price: PriceCents,
    pub quantity: Lots,
    pub filled: Lots,
}

/// One MTU's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MtuOutput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtu: Option<String>,
    pub clearing_price: Option<PriceCents>,
    pub volume: Lots,
    pub price_interval: Option<[PriceCents; 2]>,
    pub fills: Vec<StepFill>,
}

/// A problem with the input, with where it is.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

/// Reads curves, clears every MTU, answers the output documents.
pub fn clear_document(text: &str) -> Result<Vec<MtuOutput>, InputError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| InputError(format!("not valid JSON: {e}")))?;
    let (limits, mtus) = read(value)?;
    Ok(mtus.into_iter().map(|m| clear_mtu(m, limits)).collect())
}

fn read(value: Value) -> Result<(Limits, Vec<MtuInput>), InputError> {
    let bad = |e: serde_json::Error| InputError(format!("{e}"));
    let input: FileInput = match value {
        Value::Array(_) => FileInput {
            market: None,
            limits: None,
            mtus: Some(serde_json::from_value(value).map_err(bad)?),
            mtu: None,
            steps: None,
        },
        other => serde_json::from_value(other).map_err(bad)?,
    };
    let limits = match (input.limits, input.market) {
        (Some(l), _) => l,
        (None, market) => {
            let spec = MarketRules::default()
                .spec(market.unwrap_or(Market::Sdac))
                .clone();
            Limits {
                min_price: spec.min_price,
                max_price: spec.max_price,
            }
        }
    };
    let mtus = match (input.mtus, input.steps) {
        (Some(m), None) => m,
        (None, Some(steps)) => vec![MtuInput {
            mtu: input.mtu,
            steps,
        }],
        _ => {
            return Err(InputError(
                "give either \"steps\" (one MTU) or \"mtus\" (several)".into(),
            ));
        }
    };
    for (i, m) in mtus.iter().enumerate() {
        let mut ids = HashSet::new();
        for (k, s) in m.steps.iter().enumerate() {
            let at = format!("mtus[{i}].steps[{k}]");
            if !ids.insert(s.id.as_str()) {
                return Err(InputError(format!(
                    "{at}.id: {:?} appears twice in the MTU",
                    s.id
                )));
            }
            if s.quantity.0 <= 0 {
                return Err(InputError(format!(
                    "{at}.quantity: {} must be above zero",
                    s.quantity
                )));
            }
            if s.price < limits.min_price || s.price > limits.max_price {
                return Err(InputError(format!(
                    "{at}.price: {} is outside the limits [{}, {}]",
                    s.price, limits.min_price, limits.max_price
                )));
            }
        }
    }
    Ok((limits, mtus))
}

fn clear_mtu(m: MtuInput, limits: Limits) -> MtuOutput {
    let c = clear(&m.steps, limits);
    let mut fills: Vec<StepFill> = m
        .steps
        .into_iter()
        .zip(c.filled)
        .map(|(s, filled)| StepFill {
            id: s.id,
            side: s.side,
            price: s.price,
            quantity: s.quantity,
            filled,
        })
        .collect();
    fills.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    MtuOutput {
        mtu: m.mtu,
        clearing_price: c.price,
        volume: c.volume,
        price_interval: c.interval.map(|(lo, hi)| [lo, hi]),
        fills,
    }
}
