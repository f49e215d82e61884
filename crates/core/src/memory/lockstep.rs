//! [`Lockstep`]: an order store that makes concurrent deliveries of one event take the worst
//! interleaving every time, instead of whatever the scheduler happens to pick.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use async_trait::async_trait;

use crate::lifecycle::{Expected, OrderRecord};
use crate::memory::lock;
use crate::order::RecordId;
use crate::ports::{Inserted, OrderStore, PortError, Replaced};

/// Wraps a store so that its first `n` reads each wait until all `n` have read: `n` deliveries
/// of one event, joined, all act on the same version of the order, and every write after that
/// races. Reads after the first `n` pass straight through.
pub struct Lockstep {
    inner: Arc<dyn OrderStore>,
    gate: Mutex<Gate>,
}

struct Gate {
    arrived: usize,
    n: usize,
    waiting: Vec<Waker>,
}

impl Lockstep {
    pub fn new(inner: Arc<dyn OrderStore>, n: usize) -> Self {
        Lockstep {
            inner,
            gate: Mutex::new(Gate {
                arrived: 0,
                n,
                waiting: Vec::new(),
            }),
        }
    }

    /// Counts this read in; whether it must wait for the others.
    fn arrive(&self) -> bool {
        let mut gate = lock(&self.gate);
        if gate.arrived >= gate.n {
            return false;
        }
        gate.arrived += 1;
        if gate.arrived == gate.n {
            gate.waiting.drain(..).for_each(Waker::wake);
            return false;
        }
        true
    }
}

/// Ready once all `n` reads have arrived.
struct AllArrived<'a>(&'a Lockstep);

impl Future for AllArrived<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut gate = lock(&self.0.gate);
        if gate.arrived >= gate.n {
            return Poll::Ready(());
        }
        gate.waiting.push(cx.waker().clone());
        Poll::Pending
    }
}

#[async_trait]
impl OrderStore for Lockstep {
    async fn insert(&self, record: &OrderRecord) -> Result<Inserted, PortError> {
        self.inner.insert(record).await
    }

    async fn insert_batch(&self, batch: &[OrderRecord]) -> Result<Vec<Inserted>, PortError> {
        self.inner.insert_batch(batch).await
    }

    async fn get(&self, record_id: &RecordId) -> Result<Option<OrderRecord>, PortError> {
        let read = self.inner.get(record_id).await;
        if self.arrive() {
            AllArrived(self).await;
        }
        read
    }

    async fn replace(
        &self,
        record: &OrderRecord,
        expected: Expected,
    ) -> Result<Replaced, PortError> {
        self.inner.replace(record, expected).await
    }
}
