//! wemeet-gateway: reads Tencent Meeting participant lists for internal frontends.
//!
//! - [`upstream`]: the Tencent Meeting client — signing, paging, pacing, retries, classified
//!   errors.
//! - [`simulator`]: a simulated upstream that verifies signatures, pages with opaque cursors,
//!   enforces quotas and injects faults, for the demo, tests and benchmarks.
//! - [`clock`]: wall-clock time on tokio's clock, for quota minutes.

pub mod clock;
pub mod simulator;
pub mod upstream;
