//! The Tencent Meeting client.
//!
//! - [`signing`]: the request signature, a pure function of credentials, request, time and nonce.
//! - [`query`]: validated queries and the exact request target sent for each page.
//! - [`wire`]: the upstream's JSON, decoded leniently.
//! - [`error`]: failures classified where they arise.
//! - [`pacer`]: the outbound limiter shared by every fetch.
//! - [`quota`]: the pacer, or the limiter every replica shares through Redis.
//! - [`breaker`]: the circuit breaker that stops calls to an upstream that keeps failing.
//! - [`client`]: the one send path and the paging loop over it.

pub mod breaker;
pub mod client;
pub mod error;
pub mod pacer;
pub mod query;
pub mod quota;
pub mod signing;
pub mod wire;

pub use client::{
    ClientConfig, Completeness, FetchProgress, ListHead, PAGE_SIZE, PageSink, ParticipantList,
    RECORD_CAP, RetryBudget, RetryPolicy, UpstreamClient,
};
pub use error::{ErrorClass, UpstreamError};
pub use query::{InvalidParameter, Operator, ParticipantsQuery};
pub use signing::Credentials;
pub use wire::Participant;
