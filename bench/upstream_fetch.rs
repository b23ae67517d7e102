//! The client's own cost: CPU per page (sign, send, parse, merge) and wall time to fetch the
//! 60,000-record demo meeting (50,000 records, 500 pages) from a running zero-latency simulator.
//!
//! Run through `bench/upstream.sh`, which starts the simulator and the official SDK's loop beside
//! it. Alone: `cargo bench --bench upstream_fetch -- http://127.0.0.1:PORT [ROUNDS]`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use wemeet_gateway::config::demo_credentials;
use wemeet_gateway::simulator::demo::HUGE_MEETING;
use wemeet_gateway::upstream::client::decode;
use wemeet_gateway::upstream::signing::signed_headers;
use wemeet_gateway::upstream::{ClientConfig, Operator, ParticipantsQuery, UpstreamClient};

/// CPU time of this thread so far, in user space and in the kernel. The runtime is
/// single-threaded, so this is the client's whole cost.
#[derive(Clone, Copy)]
struct Cpu {
    user: Duration,
    kernel: Duration,
}

impl Cpu {
    fn now() -> Self {
        use nix::sys::resource::{UsageWho, getrusage};
        let usage = getrusage(UsageWho::RUSAGE_THREAD).expect("getrusage for this thread");
        let duration = |t: nix::sys::time::TimeVal| {
            Duration::new(t.tv_sec() as u64, t.tv_usec() as u32 * 1_000)
        };
        Self {
            user: duration(usage.user_time()),
            kernel: duration(usage.system_time()),
        }
    }

    fn since(self, start: Self) -> Self {
        Self {
            user: self.user - start.user,
            kernel: self.kernel - start.kernel,
        }
    }

    fn total(self) -> Duration {
        self.user + self.kernel
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// CPU to decode one full page, alone: the part of the per-page cost that is JSON.
fn decode_cost() -> Duration {
    let demo = wemeet_gateway::simulator::demo::dataset(1_764_000_000);
    let huge = demo
        .meetings
        .iter()
        .find(|m| m.meeting_id == HUGE_MEETING)
        .unwrap();
    let records: Vec<&str> = huge.participants[..100].iter().map(|r| r.get()).collect();
    let body = format!(
        r#"{{"meeting_id":"{HUGE_MEETING}","total_count":60000,"has_remaining":true,"next_pos":7919,"participants":[{}]}}"#,
        records.join(",")
    );
    let rounds = 2_000;
    let started = Cpu::now();
    for _ in 0..rounds {
        let page = decode(200, std::hint::black_box(body.as_bytes())).unwrap();
        assert_eq!(page.participants.len(), 100);
    }
    println!("page body: {} bytes for 100 records", body.len());
    Cpu::now().since(started).total() / rounds
}

/// CPU per request of the transport alone: the same signed GET for a full page, sent and read
/// with the client's HTTP stack, not decoded. What decoding and merging add is the difference.
async fn transport_cost(base_url: &str) -> Duration {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let credentials = demo_credentials();
    let target = format!("/v1/meetings/{HUGE_MEETING}/participants?userid=owner1&pos=0&size=100");
    let rounds = 1_000u32;
    let started = Cpu::now();
    for _ in 0..rounds {
        let nonce = rand::random_range(1..=i64::MAX as u64);
        let now = wemeet_gateway::clock::unix_now().as_secs();
        let headers = signed_headers(&credentials, "GET", &target, b"", now, nonce);
        let response = http
            .get(format!("{base_url}{target}"))
            .headers(headers)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.bytes().await.unwrap().len() > 40_000);
    }
    Cpu::now().since(started).total() / rounds
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let base_url = args
        .next()
        .expect("usage: upstream_fetch BASE_URL [ROUNDS]");
    let rounds: usize = args.next().map_or(10, |r| r.parse().expect("rounds"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = UpstreamClient::new(ClientConfig {
            calls_per_minute: u32::MAX,
            list_deadline: Duration::from_secs(600),
            ..ClientConfig::new(base_url.clone(), demo_credentials())
        })
        .unwrap();
        let query =
            ParticipantsQuery::new(HUGE_MEETING, Operator::user_id("owner1").unwrap()).unwrap();
        client.fetch_participants(&query).await.unwrap(); // warm-up: connections, allocator
        let (mut walls, mut per_page, mut user, mut kernel) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut pages = 0;
        for _ in 0..rounds {
            let (cpu, wall) = (Cpu::now(), Instant::now());
            let list = client.fetch_participants(&query).await.unwrap();
            let (wall, cpu) = (wall.elapsed(), Cpu::now().since(cpu));
            assert_eq!(list.participants.len(), 50_000);
            pages = list.head.pages;
            let per = |d: Duration| d.as_secs_f64() * 1e6 / f64::from(list.head.pages);
            walls.push(wall.as_secs_f64() * 1e3);
            per_page.push(per(cpu.total()));
            user.push(per(cpu.user));
            kernel.push(per(cpu.kernel));
        }
        if std::env::var_os("SKIP_DECODE_ALONE").is_none() {
            println!(
                "rust client: decoding one page alone: {:.1} us",
                decode_cost().as_secs_f64() * 1e6
            );
        }
        println!(
            "rust client: {rounds} fetches of 50,000 records ({pages} pages): \
             median wall {:.1} ms, median client CPU {:.1} us/page \
             (user space {:.1}, kernel {:.1})",
            median(&mut walls),
            median(&mut per_page),
            median(&mut user),
            median(&mut kernel)
        );
        transport_cost(&base_url).await; // warm-up
        println!(
            "rust client: transport alone (sign, send, receive a full page): {:.1} us/request",
            transport_cost(&base_url).await.as_secs_f64() * 1e6
        );
    });
}
