//! Tencent's event deliveries (webhooks): who joined and left a meeting, pushed by Tencent to a
//! subscribed URL.
//!
//! - [`delivery`]: a delivery's signature, timestamp and payload: verified and decoded exactly as
//!   Tencent's documentation specifies (pure functions, tested with Tencent's own example).
//! - [`event`]: the events inside a delivery, decoded leniently.
//! - [`receiver`]: a subscription's deliveries verified, read, told apart from Tencent's
//!   retries, and handed on.
//! - [`apply`]: the events applied to cached lists, in batches.

pub mod apply;
pub mod delivery;
pub mod event;
pub mod receiver;
