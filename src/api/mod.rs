//! HTTP handlers and the public response types, one file per resource.

pub mod health;
pub mod participants;
