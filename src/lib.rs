//! wemeet-gateway: reads Tencent Meeting participant lists for internal frontends.
//!
//! A request flows one way: [`app`] (auth, tracing, timeouts) → [`api`] handler (validates the
//! query) → [`upstream`] client (pacing, signing, paging, retries) → back to the handler, which
//! turns the merged list into the public response; failures become problem+json in [`error`].
//!
//! - [`app`]: state, router, middleware; [`api`]: handlers and public response types;
//!   [`error`]: the public error type; [`metrics`]: Prometheus metric names.
//! - [`config`]: typed configuration from flags and environment, secrets from files.
//! - [`modes`]: what each subcommand of the binary runs.
//! - [`upstream`]: the Tencent Meeting client — signing, paging, pacing, retries, classified
//!   errors.
//! - [`simulator`]: a simulated upstream that verifies signatures, pages with opaque cursors,
//!   enforces quotas and injects faults, for the demo, tests and benchmarks.
//! - [`server`]: binding, serving and graceful shutdown; [`telemetry`]: logging.
//! - [`clock`]: wall-clock time on tokio's clock, for quota minutes.

pub mod api;
pub mod app;
pub mod cache;
pub mod clock;
pub mod config;
pub mod error;
pub mod metrics;
pub mod modes;
pub mod server;
pub mod simulator;
pub mod telemetry;
pub mod upstream;
