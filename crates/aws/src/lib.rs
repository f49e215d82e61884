//! The core's ports over AWS, and what the Lambda binaries share.
//!
//! - [`dynamodb`]: `OrderStore` on one table with a sparse `due` index.
//! - [`eventbridge`]: `EventPublisher` with PutEvents chunking and resending of failed entries.
//! - [`scheduler`]: `RetryScheduler` with one-time `at()` schedules that delete themselves.
//! - [`s3`]: `ResultStore` on a bucket.
//! - [`slack`]: `Notifier` to a Slack webhook whose URL is a Secrets Manager secret.
//! - [`error`]: SDK errors as `PortError`s that say whether a retry can help.
//! - [`env`] and [`lambda`]: configuration from the environment and the runtime loop.
//! - [`wiring`]: each port from the environment, built once at start-up; a handler's `main.rs`
//!   asks for exactly the ones its struct holds, so it builds only the clients (and needs only
//!   the permissions) it uses.

mod compact;
pub mod dynamodb;
pub mod env;
pub mod error;
pub mod eventbridge;
pub mod lambda;
pub mod s3;
pub mod scheduler;
pub mod slack;
pub mod wiring;
