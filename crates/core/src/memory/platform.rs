use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};

use super::lock;
use crate::calendar::{MARKET_TIME_ZONE, MarketRules};
use crate::hash::fnv1a64;
use crate::market::{Side, Zone};
use crate::money::{Lots, PriceCents};
use crate::order::{Order, RecordId};
use crate::ports::{AuctionPlatform, Clock, PortError, ResultsStatus, Submission};
use crate::result::OrderResult;

/// When results appear, relative to the calendar's expected publication time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publication {
    After(SignedDuration),
    /// An auction whose results never come: the evaluator must give up.
    Never,
}

/// A stand-in auction platform: takes orders until gate closure and, after the publication
/// time, answers with a result derived from the order against a reference price per zone and
/// quarter-hour (buys at or above it and sells at or below it are filled in full). The
/// `energy-auction` crate's simulator, which clears against a synthetic market, replaces it
/// wherever the system runs.
pub struct InMemoryPlatform {
    rules: MarketRules,
    clock: Arc<dyn Clock>,
    orders: Mutex<HashMap<RecordId, Order>>,
    publication: Mutex<HashMap<Zone, Publication>>,
}

impl InMemoryPlatform {
    pub fn new(rules: MarketRules, clock: Arc<dyn Clock>) -> Self {
        InMemoryPlatform {
            rules,
            clock,
            orders: Mutex::new(HashMap::new()),
            publication: Mutex::new(HashMap::new()),
        }
    }

    /// Sets when one zone's results appear (default: at the expected time).
    pub fn set_publication(&self, zone: Zone, publication: Publication) {
        lock(&self.publication).insert(zone, publication);
    }

    /// The clearing price this platform uses for a zone and MTU: a zone level plus a daily
    /// shape (night trough, morning and evening peaks, midday solar dip).
    pub fn reference_price(zone: Zone, mtu_start: Timestamp) -> PriceCents {
        let level = 6_000 + (fnv1a64(zone.as_str().as_bytes()) % 4_000) as i64;
        let hour = jiff::tz::TimeZone::get(MARKET_TIME_ZONE)
            .map_or(0, |tz| mtu_start.to_zoned_datetime(tz).hour());
        let shape = match hour {
            0..=5 => -2_500,
            6..=9 => 3_000,
            10..=15 => -2_000,
            16..=20 => 4_500,
            _ => 500,
        };
        PriceCents(level + shape)
    }

    fn publication_of(&self, order: &Order) -> Result<Option<Timestamp>, PortError> {
        let expected = self
            .rules
            .expected_publication(order.auction())
            .map_err(|e| PortError::permanent("platform", e.to_string()))?;
        Ok(
            match lock(&self.publication)
                .get(&order.zone)
                .copied()
                .unwrap_or(Publication::After(SignedDuration::ZERO))
            {
                Publication::After(d) => Some(expected.saturating_add(d).unwrap_or(expected)),
                Publication::Never => None,
            },
        )
    }
}

#[async_trait]
impl AuctionPlatform for InMemoryPlatform {
    async fn submit(&self, order: &Order) -> Result<Submission, PortError> {
        let gate = self
            .rules
            .gate_closure(order.auction())
            .map_err(|e| PortError::permanent("platform", e.to_string()))?;
        let mut orders = lock(&self.orders);
        if self.clock.now() >= gate && !orders.contains_key(&order.record_id) {
            return Ok(Submission::Refused {
                reason: format!("gate closed at {gate}"),
            });
        }
        orders.insert(order.record_id.clone(), order.clone());
        drop(orders);
        Ok(Submission::Accepted {
            expected_publication: self.publication_of(order)?,
        })
    }

    async fn results(&self, order: &Order) -> Result<ResultsStatus, PortError> {
        let Some(stored) = lock(&self.orders).get(&order.record_id).cloned() else {
            return Ok(ResultsStatus::Unknown {
                reason: format!("order {} was never submitted", order.record_id),
            });
        };
        let now = self.clock.now();
        match self.publication_of(&stored)? {
            Some(at) if now >= at => {
                let fills: Vec<(Option<PriceCents>, Lots)> = stored
                    .periods
                    .iter()
                    .map(|p| {
                        let price = Self::reference_price(stored.zone, p.mtu_start);
                        let taken = p
                            .steps
                            .iter()
                            .filter(|s| match stored.side {
                                Side::Buy => s.price >= price,
                                Side::Sell => s.price <= price,
                            })
                            .map(|s| s.quantity.0)
                            .sum();
                        (Some(price), Lots(taken))
                    })
                    .collect();
                Ok(ResultsStatus::Published(Box::new(OrderResult::from_fills(
                    &stored, &fills, at,
                ))))
            }
            Some(at) => Ok(ResultsStatus::NotYet {
                expected_publication: Some(at),
            }),
            None => Ok(ResultsStatus::NotYet {
                expected_publication: None,
            }),
        }
    }
}
