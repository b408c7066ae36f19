//! Observability: the logging macros (`log.rs`, compiled to nothing without
//! the `tracing` feature), the audit event of every decision (`audit.rs`)
//! and the metrics (`metrics.rs`, feature `metrics`).

pub(crate) mod audit;
pub(crate) mod log;
pub(crate) mod metrics;
