//! wemeet-gateway: reads Tencent Meeting participant lists for internal frontends.
//!
//! - [`config`]: typed configuration from flags and environment, secrets from files.
//! - [`modes`]: what each subcommand of the binary runs.
//! - [`upstream`]: the Tencent Meeting client — signing, paging, pacing, retries, classified
//!   errors.
//! - [`simulator`]: a simulated upstream that verifies signatures, pages with opaque cursors,
//!   enforces quotas and injects faults, for the demo, tests and benchmarks.
//! - [`server`]: binding, serving and graceful shutdown; [`telemetry`]: logging.
//! - [`clock`]: wall-clock time on tokio's clock, for quota minutes.

pub mod clock;
pub mod config;
pub mod modes;
pub mod server;
pub mod simulator;
pub mod telemetry;
pub mod upstream;
