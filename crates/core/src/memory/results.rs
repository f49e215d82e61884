use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;

use super::lock;
use crate::ports::{PortError, ResultStore};

/// Result objects by key.
#[derive(Default)]
pub struct InMemoryResults {
    objects: Mutex<BTreeMap<String, Vec<u8>>>,
    puts: AtomicUsize,
    fail_next: AtomicUsize,
}

impl InMemoryResults {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn objects(&self) -> BTreeMap<String, Vec<u8>> {
        lock(&self.objects).clone()
    }

    /// Writes so far, repeats included.
    pub fn puts(&self) -> usize {
        self.puts.load(Ordering::SeqCst)
    }

    /// Makes the next `n` writes fail with a retryable error.
    pub fn fail_next(&self, n: usize) {
        self.fail_next.store(n, Ordering::SeqCst);
    }
}

#[async_trait]
impl ResultStore for InMemoryResults {
    async fn put(&self, key: &str, body: &[u8]) -> Result<(), PortError> {
        if self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(PortError::transient("result store", "injected failure"));
        }
        lock(&self.objects).insert(key.to_string(), body.to_vec());
        self.puts.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}
