//! The compact stored form of an order record: the `r` attribute of its DynamoDB item.
//!
//! DynamoDB bills a write by the kilobyte of the larger of the old and the new item, and an
//! order's item is rewritten at every state change, so its size is most of the bill. The compact
//! form keeps what cannot be recomputed and nothing else:
//!
//! - the order's body as arrays (market, delivery date, zone, portfolio, side, then per MTU its
//!   start and its `[price, quantity]` steps); the `record_id` is the item's key;
//! - `state`, `version` and `attempt` are the item's own attributes, `ttl` too once the order is
//!   final (before that it is [`NO_EXPIRY`]), so they are not repeated;
//! - a result as its outcome, publication time and per MTU `[clearing price, accepted
//!   quantity]`: the order's identity, offered quantities, energies and totals are recomputed
//!   from the order with [`OrderResult::from_fills`];
//! - a preliminary result the final one confirmed (same outcome, MTUs and totals) as its
//!   publication time alone;
//! - the result object's key only when it is not the order's deterministic one.
//!
//! [`encode`] answers `None` when the compact form would not read back as exactly the record
//! (a result that is not the order's own arithmetic, say): the caller then stores the full JSON
//! form, which every version reads.

use energy_core::lifecycle::{NO_EXPIRY, OrderRecord, OrderState, Preliminary};
use energy_core::market::{Market, Side, Zone};
use energy_core::money::{Lots, PriceCents};
use energy_core::order::{Order, Period, RecordId, Step};
use energy_core::result::{Failure, OrderResult, Outcome};
use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

/// What the compact form does not hold: the item's other attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    pub record_id: RecordId,
    pub state: OrderState,
    pub version: u64,
    pub attempt: u32,
    /// The item's `ttl`, present once the order is final.
    pub ttl: Option<i64>,
}

impl Keys {
    pub fn of(record: &OrderRecord) -> Keys {
        Keys {
            record_id: record.order.record_id.clone(),
            state: record.state,
            version: record.version,
            attempt: record.attempt,
            ttl: record.state.is_final().then_some(record.ttl),
        }
    }
}

type Curve = (Timestamp, Vec<(PriceCents, Lots)>);

/// An order's body without its id.
#[derive(Debug, Serialize, Deserialize)]
struct Body(Market, Date, Zone, String, Side, Vec<Curve>);

impl Body {
    fn of(o: &Order) -> Body {
        Body(
            o.market,
            o.delivery_date,
            o.zone,
            o.portfolio.clone(),
            o.side,
            o.periods
                .iter()
                .map(|p| {
                    let steps = p.steps.iter().map(|s| (s.price, s.quantity)).collect();
                    (p.mtu_start, steps)
                })
                .collect(),
        )
    }

    fn order(self, record_id: &RecordId) -> Order {
        let Body(market, delivery_date, zone, portfolio, side, curves) = self;
        Order {
            record_id: record_id.clone(),
            market,
            delivery_date,
            zone,
            portfolio,
            side,
            periods: curves
                .into_iter()
                .map(|(mtu_start, steps)| Period {
                    mtu_start,
                    steps: steps
                        .into_iter()
                        .map(|(price, quantity)| Step { price, quantity })
                        .collect(),
                })
                .collect(),
        }
    }
}

/// A result as the platform's answer per MTU.
#[derive(Debug, Serialize, Deserialize)]
struct Fills {
    #[serde(rename = "o")]
    outcome: Outcome,
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    rejection_reason: Option<String>,
    #[serde(rename = "t")]
    published_at: Timestamp,
    #[serde(rename = "f")]
    fills: Vec<(Option<PriceCents>, Lots)>,
}

impl Fills {
    fn of(r: &OrderResult) -> Fills {
        Fills {
            outcome: r.outcome,
            rejection_reason: r.rejection_reason.clone(),
            published_at: r.published_at,
            fills: r
                .mtus
                .iter()
                .map(|m| (m.clearing_price, m.accepted_quantity))
                .collect(),
        }
    }

    fn result(self, order: &Order) -> Result<OrderResult, String> {
        let mut r = OrderResult::from_fills(order, &self.fills, self.published_at)
            .map_err(|e| e.to_string())?;
        r.outcome = self.outcome;
        r.rejection_reason = self.rejection_reason;
        Ok(r)
    }
}

/// A preliminary result: the final one's figures (`t` alone) or its own.
#[derive(Debug, Serialize, Deserialize)]
struct Prelim {
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none")]
    as_final_published_at: Option<Timestamp>,
    #[serde(rename = "x", default, skip_serializing_if = "Option::is_none")]
    result: Option<Fills>,
    #[serde(rename = "w", default, skip_serializing_if = "Option::is_none")]
    withdrawn_at: Option<Timestamp>,
    #[serde(rename = "a")]
    announced: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct Compact {
    #[serde(rename = "o")]
    order: Body,
    #[serde(rename = "c", default, skip_serializing_if = "is_zero")]
    checks_before: u32,
    #[serde(rename = "d", default, skip_serializing_if = "Option::is_none")]
    due_at: Option<Timestamp>,
    #[serde(rename = "s")]
    submitted_at: Timestamp,
    #[serde(rename = "u")]
    updated_at: Timestamp,
    #[serde(rename = "x", default, skip_serializing_if = "Option::is_none")]
    result: Option<Fills>,
    /// The result object's key; `""` stands for the order's own ([`Order::result_key`]).
    #[serde(rename = "k", default, skip_serializing_if = "Option::is_none")]
    result_key: Option<String>,
    #[serde(rename = "f", default, skip_serializing_if = "Option::is_none")]
    failure: Option<Failure>,
    #[serde(rename = "l", default, skip_serializing_if = "Option::is_none")]
    claimed_until: Option<Timestamp>,
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    preliminary: Option<Prelim>,
    #[serde(rename = "h", default, skip_serializing_if = "Option::is_none")]
    held_body: Option<Body>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The compact JSON of `record`, or `None` if it would not read back as `record`.
pub fn encode(record: &OrderRecord) -> Option<String> {
    let own_key = record.order.result_key();
    let preliminary = record.preliminary.as_ref().map(|p| {
        let confirmed = record.result.as_ref().filter(|r| {
            let mut same = (*r).clone();
            same.published_at = p.result.published_at;
            same == p.result
        });
        Prelim {
            as_final_published_at: confirmed.map(|_| p.result.published_at),
            result: confirmed.is_none().then(|| Fills::of(&p.result)),
            withdrawn_at: p.withdrawn_at,
            announced: p.announced,
        }
    });
    let compact = Compact {
        order: Body::of(&record.order),
        checks_before: record.checks_before,
        due_at: record.due_at,
        submitted_at: record.submitted_at,
        updated_at: record.updated_at,
        result: record.result.as_ref().map(Fills::of),
        result_key: record.result_key.as_ref().map(|k| {
            if *k == own_key {
                String::new()
            } else {
                k.clone()
            }
        }),
        failure: record.failure.clone(),
        claimed_until: record.claimed_until,
        preliminary,
        held_body: record.held_body.as_ref().map(Body::of),
    };
    let json = serde_json::to_string(&compact).ok()?;
    // Only a form that reads back as the record is stored; anything else keeps the full one.
    (decode(&json, &Keys::of(record)).ok()? == *record).then_some(json)
}

/// The record from its compact JSON and the item's other attributes.
pub fn decode(json: &str, keys: &Keys) -> Result<OrderRecord, String> {
    let c: Compact = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let order = c.order.order(&keys.record_id);
    let result = c.result.map(|f| f.result(&order)).transpose()?;
    let preliminary = match c.preliminary {
        None => None,
        Some(p) => {
            let result = match (p.as_final_published_at, p.result, &result) {
                (_, Some(own), _) => own.result(&order)?,
                (Some(at), None, Some(last)) => OrderResult {
                    published_at: at,
                    ..last.clone()
                },
                _ => return Err("a preliminary result without its figures".into()),
            };
            Some(Preliminary {
                result,
                withdrawn_at: p.withdrawn_at,
                announced: p.announced,
            })
        }
    };
    let result_key = c
        .result_key
        .map(|k| if k.is_empty() { order.result_key() } else { k });
    Ok(OrderRecord {
        state: keys.state,
        version: keys.version,
        attempt: keys.attempt,
        checks_before: c.checks_before,
        due_at: c.due_at,
        submitted_at: c.submitted_at,
        updated_at: c.updated_at,
        ttl: keys.ttl.unwrap_or(NO_EXPIRY),
        result,
        result_key,
        failure: c.failure,
        claimed_until: c.claimed_until,
        preliminary,
        held_body: c.held_body.map(|b| b.order(&keys.record_id)),
        order,
    })
}
