//! Black-box tests: the real servers on port 0, talked to over HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cache;
mod cluster;
mod helpers;
mod limits;
mod openapi;
mod participants;
mod process;
mod redis_server;
mod simulator;
mod upstream_client;
mod views;
mod webhooks;
