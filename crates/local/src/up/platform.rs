//! The simulated auction platform of `energy up`, with the orders it accepted kept in the
//! database.

use std::sync::Arc;

use async_trait::async_trait;
use energy_auction::sim::SimPlatform;
use energy_core::order::Order;
use energy_core::ports::{AuctionPlatform, PortError, ResultsStatus, Submission, Withdrawal};

use crate::up::shared::{Shared, port};

/// The simulated platform, with the orders it accepted kept in the database: after a restart
/// it holds them again and clears each auction exactly as it would have.
pub struct PersistentPlatform {
    pub shared: Arc<Shared>,
    pub sim: Arc<SimPlatform>,
}

impl PersistentPlatform {
    /// Gives the simulator back the orders it had accepted.
    pub fn restore(&self) -> anyhow::Result<usize> {
        let bodies = self.shared.db.platform_orders()?;
        for body in &bodies {
            let order: Order = serde_json::from_str(body)?;
            self.sim.restore(order);
        }
        Ok(bodies.len())
    }
}

#[async_trait]
impl AuctionPlatform for PersistentPlatform {
    async fn submit(&self, order: &Order) -> Result<Submission, PortError> {
        if self.sim.gate_passed(order.auction()) {
            // Nothing new can be taken: no row is written, so none can outlive a crash and be
            // restored into a closed auction.
            return self.sim.submit(order).await;
        }
        let body = serde_json::to_string(order)
            .map_err(|e| PortError::permanent("auction platform", e.to_string()))?;
        // Kept before it is accepted, forgotten if refused: a crash in between loses nothing.
        let db = &self.shared.db;
        let (id, row) = (order.record_id.to_string(), body.clone());
        db.run_early(move |db| db.platform_accept(&id, &row))
            .await
            .map_err(port("auction platform"))?;
        let answer = self.sim.submit(order).await;
        if !matches!(answer, Ok(Submission::Accepted { .. })) {
            let id = order.record_id.to_string();
            db.run_early(move |db| db.platform_forget(&id, &body))
                .await
                .map_err(port("auction platform"))?;
        }
        answer
    }

    async fn results(&self, order: &Order) -> Result<ResultsStatus, PortError> {
        self.sim.results(order).await
    }

    /// Forgotten in the database first, then withdrawn: a crash in between leaves a platform
    /// that, restarted, does not hold the order, as the retried withdrawal then finds. Kept again
    /// if the platform refuses.
    async fn withdraw(&self, order: &Order) -> Result<Withdrawal, PortError> {
        let db = &self.shared.db;
        let id = order.record_id.to_string();
        let receipt = db
            .run_early(move |db| db.platform_withdraw(&id))
            .await
            .map_err(port("auction platform"))?;
        let answer = self.sim.withdraw(order).await;
        if let Ok(Withdrawal::Refused { .. }) | Err(_) = &answer
            && let Some(held) = self.sim.order(&order.record_id)
        {
            let body = serde_json::to_string(&held)
                .map_err(|e| PortError::permanent("auction platform", e.to_string()))?;
            let id = order.record_id.to_string();
            db.run_early(move |db| match receipt {
                // In its place: the auction clears as it would have without the attempt.
                Some(receipt) => db.platform_put_back(&id, receipt, &body),
                None => db.platform_accept(&id, &body),
            })
            .await
            .map_err(port("auction platform"))?;
        }
        answer
    }
}
