//! The seed's design, priced from the same table: one Step Functions standard workflow per
//! order that invokes a Python `lambda_a` every two minutes (Task → Choice → Wait) until the
//! results are out, then `lambda_b`. Nothing of it runs here: its usage per order is computed
//! from the stated assumptions below and from what the Energy run measured of the same orders
//! (item size, share of accepted and failed orders, posts per order).

/// The seed's timing, sizes and code, as assumed. Every figure is printed with the table.
#[derive(Debug, Clone)]
pub struct SeedAssumptions {
    /// The order is posted this long before the auction's gate closure.
    pub lead_minutes: u32,
    /// Results come this long after gate closure (SDAC: 12:45 for a 12:00 gate).
    pub results_after_gate_minutes: u32,
    /// The Wait state between two polls.
    pub poll_seconds: u32,
    /// Python 3.11 on x86_64 at SAM's default memory.
    pub memory_mb: u32,
    /// Billed warm durations: post_lambda (validate, PutItem), lambda_a (GetItem and a
    /// platform check), lambda_b (S3 PUT or a Slack post).
    pub post_ms: f64,
    pub poll_ms: f64,
    pub finish_ms: f64,
    /// A Python runtime with boto3 from start to first `next` (TOOLCHAIN.md, measured).
    pub init_ms: f64,
    /// Log bytes per invocation in Lambda's text format: START, END and REPORT lines (about
    /// 330 bytes) and a print of the handler (about 100), in 4 log events.
    pub log_bytes: f64,
    pub log_events: f64,
}

impl Default for SeedAssumptions {
    fn default() -> Self {
        SeedAssumptions {
            lead_minutes: 6 * 60,
            results_after_gate_minutes: 45,
            poll_seconds: 120,
            memory_mb: 128,
            post_ms: 60.0,
            poll_ms: 50.0,
            finish_ms: 60.0,
            init_ms: 280.0,
            log_bytes: 430.0,
            log_events: 4.0,
        }
    }
}

impl SeedAssumptions {
    /// Runs of `lambda_a` until the results are there: the first at submission, then one per
    /// Wait, the last one finding the results.
    pub fn polls(&self) -> f64 {
        let waiting = f64::from(self.lead_minutes + self.results_after_gate_minutes) * 60.0;
        (waiting / f64::from(self.poll_seconds)).ceil() + 1.0
    }

    /// State transitions of one execution: InvokeA, Choice and Wait for each poll that finds
    /// nothing; InvokeA and Choice for the last; InvokeB; the end state; and a notify state for
    /// a failed order.
    pub fn transitions(&self, failed_share: f64) -> f64 {
        let polls = self.polls();
        3.0 * (polls - 1.0) + 2.0 + 1.0 + 1.0 + failed_share
    }
}

/// What the Energy run measured that the seed's model reuses, per order.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    pub posts: f64,
    pub item_bytes: f64,
    pub s3_puts: f64,
    pub secret_reads: f64,
    pub failed_share: f64,
    pub invocations_per_container: f64,
}

/// The seed's usage per order, by billing dimension.
#[derive(Debug, Clone, Copy, Default)]
pub struct SeedUsage {
    pub api_requests: f64,
    pub lambda_requests: f64,
    pub lambda_gb_seconds_x86: f64,
    pub transitions: f64,
    pub wru: f64,
    pub rru: f64,
    pub s3_puts: f64,
    pub secret_reads: f64,
    pub log_bytes: f64,
}

pub fn usage(a: &SeedAssumptions, m: Measured) -> SeedUsage {
    let polls = a.polls();
    // post_lambda per post, lambda_a per poll, lambda_b once.
    let invocations = m.posts + polls + 1.0;
    let cold = invocations / m.invocations_per_container.max(1.0);
    let ms = m.posts * a.post_ms + polls * a.poll_ms + a.finish_ms + cold * a.init_ms;
    let gb = f64::from(a.memory_mb) / 1024.0;
    let write = (m.item_bytes / 1024.0).ceil().max(1.0);
    let read_eventual = (m.item_bytes / 4096.0).ceil().max(1.0) * 0.5;
    SeedUsage {
        api_requests: m.posts,
        lambda_requests: invocations,
        lambda_gb_seconds_x86: ms / 1000.0 * gb,
        transitions: a.transitions(m.failed_share),
        // PutItem at submission; lambda_b marks the order done.
        wru: 2.0 * write,
        // lambda_a reads the order on every poll, lambda_b once more.
        rru: (polls + 1.0) * read_eventual,
        s3_puts: m.s3_puts,
        secret_reads: m.secret_reads,
        log_bytes: invocations * (a.log_bytes + 26.0 * a.log_events),
    }
}
