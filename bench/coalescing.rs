//! 1,000 concurrent requests for a cold 1,234-record meeting: how long until every caller has
//! the list, and how many upstream calls it took (one pass is 13 pages).
//!
//! The gateway and the simulator run in this process on loopback, release build:
//! `cargo bench --bench coalescing [-- CALLERS ROUNDS]`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use sha2::Digest;
use wemeet_gateway::app::Gateway;
use wemeet_gateway::config::{Settings, demo_credentials};
use wemeet_gateway::server::Server;
use wemeet_gateway::simulator::demo::LIVE_MEETING;
use wemeet_gateway::simulator::{Simulator, SimulatorConfig, demo_dataset};
use wemeet_gateway::upstream::{ClientConfig, Operator};

const KEY: &str = "bench-key";

async fn start() -> (Simulator, String) {
    let simulator = Simulator::new(SimulatorConfig {
        credentials: demo_credentials(),
        calls_per_minute: u32::MAX,
        calls_per_day: u32::MAX,
        dataset: demo_dataset(),
    });
    let upstream = Server::bind("127.0.0.1:0", simulator.router())
        .await
        .unwrap()
        .spawn();
    let mut settings = Settings::new(
        "127.0.0.1:0",
        ClientConfig::new(format!("http://{upstream}"), demo_credentials()),
    );
    settings.default_operator = Some(Operator::user_id("owner1").unwrap());
    settings.api_key_digests = vec![sha2::Sha256::digest(KEY.as_bytes()).into()];
    let gateway = Gateway::build(settings).await.unwrap().spawn();
    (simulator, format!("http://{gateway}"))
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let callers: usize = args.next().map_or(1_000, |a| a.parse().unwrap());
    let rounds: usize = args.next().map_or(5, |a| a.parse().unwrap());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder().pool_max_idle_per_host(callers).build().unwrap();
        let mut walls = Vec::new();
        for _ in 0..rounds {
            // A fresh gateway each round: the meeting is cold.
            let (simulator, base) = start().await;
            let url = format!("{base}/meetings/{LIVE_MEETING}/participants");
            let started = Instant::now();
            let requests: Vec<_> = (0..callers)
                .map(|_| {
                    let request = http.get(&url).bearer_auth(KEY).send();
                    tokio::spawn(async move {
                        let response = request.await.unwrap();
                        assert_eq!(response.status(), 200);
                        response.bytes().await.unwrap().len()
                    })
                })
                .collect();
            let mut sizes = Vec::new();
            for request in requests {
                sizes.push(request.await.unwrap());
            }
            let wall = started.elapsed();
            assert!(sizes.iter().all(|s| *s == sizes[0]));
            let calls = simulator.counters().calls;
            assert_eq!(calls, 13, "one upstream pass");
            walls.push(wall.as_secs_f64() * 1e3);
            println!(
                "{callers} callers, cold meeting: all answered in {:.1} ms, {calls} upstream calls, {} bytes each",
                wall.as_secs_f64() * 1e3,
                sizes[0]
            );
        }
        walls.sort_by(f64::total_cmp);
        println!("median over {rounds} rounds: {:.1} ms", walls[walls.len() / 2]);
    });
}
