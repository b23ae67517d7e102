//! wemeet-gateway: reads Tencent Meeting participant lists for internal frontends.
//!
//! A request flows one way, and no module imports one above it:
//!
//! 1. [`app`], the composition root, built once from [`config::Settings`]: middleware
//!    (request metrics, CORS, request id, tracing, panics, timeout, body limit), then the router.
//! 2. [`api`]: the handler checks the API key and parses the query (its rules live in
//!    [`upstream::query`]), asks the cache, and gives the answer its HTTP face (ETag, 304, gzip,
//!    `Cache-Control`, `Age`, `Cache-Status`, or a 202). Failures become problem+json in
//!    [`error`].
//! 3. [`cache`]: fresh entries answer at once; misses for one list share one detached fetch,
//!    whose pages the API's renderer turns into the stored body as they arrive. No HTTP in it.
//! 4. [`upstream`]: the Tencent Meeting client: pacing, signing, paging, retries, errors
//!    classified where they arise. (`/readyz` and the quota gauge read its state directly.)
//!
//! Beside the flow: [`simulator`], a simulated upstream with its own copy of Tencent's limits
//! (for the demo, tests and benchmarks); [`modes`], what each subcommand runs; [`server`],
//! binding and graceful shutdown; [`telemetry`], logging; [`metrics`], metric names; [`clock`],
//! wall-clock time on tokio's clock.

pub mod api;
pub mod app;
pub mod cache;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod error;
pub mod metrics;
pub mod modes;
pub mod server;
pub mod simulator;
pub mod telemetry;
pub mod upstream;
pub mod webhooks;
