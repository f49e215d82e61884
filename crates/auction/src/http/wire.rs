//! Request and response documents of the platform API (camelCase, like the participant APIs it
//! follows).

use energy_core::calendar::AuctionId;
use energy_core::market::{Market, Side, Zone};
use energy_core::order::{Order, Period, RecordId, Step};
use energy_core::result::OrderResult;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// An auction's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuctionState {
    Open,
    Closed,
    ResultsPublished,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Auction {
    pub auction_id: String,
    pub market: Market,
    pub delivery_date: jiff::civil::Date,
    pub state: AuctionState,
    pub gate_closure: Timestamp,
    pub expected_publication: Option<Timestamp>,
    pub delivery_start: Timestamp,
    pub delivery_end: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Curve {
    pub mtu_start: Timestamp,
    pub steps: Vec<Step>,
}

/// The body of `PUT /v1/auctions/{auctionId}/orders/{orderId}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CurveOrder {
    pub area: Zone,
    pub portfolio: String,
    pub side: Side,
    pub curves: Vec<Curve>,
}

impl CurveOrder {
    pub fn from_order(order: &Order) -> CurveOrder {
        CurveOrder {
            area: order.zone,
            portfolio: order.portfolio.clone(),
            side: order.side,
            curves: order
                .periods
                .iter()
                .map(|p| Curve {
                    mtu_start: p.mtu_start,
                    steps: p.steps.clone(),
                })
                .collect(),
        }
    }

    pub fn into_order(self, auction: AuctionId, record_id: RecordId) -> Order {
        let mut periods: Vec<Period> = self
            .curves
            .into_iter()
            .map(|c| Period {
                mtu_start: c.mtu_start,
                steps: c.steps,
            })
            .collect();
        periods.sort_by_key(|p| p.mtu_start);
        Order {
            record_id,
            market: auction.market,
            delivery_date: auction.delivery_date,
            zone: self.area,
            portfolio: self.portfolio,
            side: self.side,
            periods,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderAccepted {
    pub auction_id: String,
    pub order_id: String,
    pub state: String,
    pub expected_publication: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ResultsState {
    NotPublished,
    /// A preliminary result: it may still be withdrawn or replaced.
    Preliminary,
    /// The final result.
    Published,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderResults {
    pub auction_id: String,
    pub order_id: String,
    pub status: ResultsState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_publication: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<OrderResult>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuctionResults {
    pub auction_id: String,
    pub status: ResultsState,
    pub results: Vec<OrderResult>,
}

/// Every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
    pub message: String,
}

/// `SDAC-2026-11-28`.
pub fn auction_id(auction: AuctionId) -> String {
    auction.to_string()
}

/// Reads `SDAC-2026-11-28`.
pub fn parse_auction_id(s: &str) -> Option<AuctionId> {
    let (market, date) = s.split_once('-')?;
    Some(AuctionId {
        market: market.parse().ok()?,
        delivery_date: date.parse().ok()?,
    })
}
