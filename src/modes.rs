//! The binary's modes, each a function from its parsed arguments to a running service.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::app::{BuildError, Gateway};
use crate::config::{
    ConfigError, DEMO_CREDENTIALS, DemoArgs, HealthcheckArgs, ServeArgs, Settings, SimulateArgs,
    demo_credentials,
};
use crate::server::{BindError, Server, shutdown_signal};
use crate::simulator::dataset::{Dataset, DatasetError};
use crate::simulator::demo::{
    HUGE_MEETING, LIVE_MEETING, NOT_STARTED_MEETING, RECURRING_MEETING, SEED_MEETING,
    STANDING_MEETING, SUB_MEETINGS,
};
use crate::simulator::events::EventFeed;
use crate::simulator::{Simulator, SimulatorConfig, demo_dataset};
use crate::upstream::{ClientConfig, Operator};
use crate::webhooks::delivery::WebhookKeys;

/// Why a mode could not start or stopped with an error; the message is for the operator.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("server error: {0}")]
    Serve(#[from] std::io::Error),
    #[error("unhealthy: {0}")]
    Unhealthy(String),
}

/// `wemeet-gateway serve`: the production gateway.
pub async fn serve(args: ServeArgs) -> Result<(), StartError> {
    let settings = args.into_settings()?;
    let anonymous = settings.allow_anonymous;
    let gateway = Gateway::build(settings).await?;
    tracing::info!(address = %gateway.local_addr(), anonymous, "gateway listening");
    gateway.serve(shutdown_signal()).await?;
    tracing::info!("gateway stopped");
    Ok(())
}

/// `wemeet-gateway demo`: the simulator and the gateway in one process, on loopback.
pub async fn demo(args: DemoArgs) -> Result<(), StartError> {
    let simulator = Simulator::new(SimulatorConfig {
        credentials: demo_credentials(),
        calls_per_minute: args.upstream_calls_per_minute,
        calls_per_day: u32::MAX,
        dataset: demo_dataset(),
    });
    let upstream_addr = Server::bind("127.0.0.1:0", simulator.router())
        .await?
        .spawn();

    let key = format!("demo-{}", hex::encode(rand::random::<[u8; 16]>()));
    let mut settings = Settings::new(
        args.listen,
        ClientConfig {
            calls_per_minute: (args.upstream_calls_per_minute / 5 * 4).max(1),
            ..ClientConfig::new(format!("http://{upstream_addr}"), demo_credentials())
        },
    );
    settings.default_operator = Some(Operator::user_id("owner1").expect("a valid userid"));
    settings.api_key_digests = vec![Sha256::digest(key.as_bytes()).into()];
    settings.request_timeout = Duration::from_secs(300);
    settings.shutdown_grace = Duration::from_secs(5);
    // The demo's one key is shared by every tool pointed at it (curl, Swagger UI, a conformance
    // run's thousands of requests): no per-key rate limit.
    settings.rate_limit = 0;
    // The webhook route is on too, with a token of its own: deliveries signed with it are
    // applied to the demo's cached lists as Tencent's would be.
    let token = format!("demo-{}", hex::encode(rand::random::<[u8; 12]>()));
    settings.webhooks =
        Some(WebhookKeys::new(token.clone().into(), None).expect("a demo token is not empty"));
    let gateway = Gateway::build(settings).await?;
    let base = format!("http://{}", gateway.local_addr());
    // The live meeting changes as in a real one, and the simulator reports each change to the
    // gateway as Tencent would: its cached list follows within a second or two.
    if !args.events_every.is_zero() {
        simulator.start_events(EventFeed {
            url: format!("{base}/webhooks/wemeet"),
            keys: WebhookKeys::new(token.clone().into(), None).expect("a demo token is not empty"),
            every: args.events_every,
        });
    }
    print_demo_banner(&base, &key, &upstream_addr.to_string());
    println!("webhook token for signed deliveries to {base}/webhooks/wemeet: {token}");
    if !args.events_every.is_zero() {
        println!(
            "(the live meeting changes every {}: someone joins or leaves, and the gateway hears of it)",
            humantime::format_duration(args.events_every)
        );
    }
    gateway.serve(shutdown_signal()).await?;
    Ok(())
}

fn print_demo_banner(base: &str, key: &str, upstream: &str) {
    println!(
        "wemeet-gateway demo: the gateway on {base}, a simulated Tencent Meeting API on http://{upstream}"
    );
    println!("demo API key (valid until this process stops): {key}");
    println!();
    let sub = format!("?sub_meeting_id={}", SUB_MEETINGS[0]);
    let now = crate::clock::unix_now().as_secs() as i64;
    let days_62 = format!("?start_time={}&end_time={now}", now - 62 * 24 * 3600);
    let meetings = [
        (SEED_MEETING, "", "the API page's two sample records"),
        (LIVE_MEETING, "", "a live meeting, 1,234 records"),
        (
            HUGE_MEETING,
            "",
            "60,000 records: 50,000 served, marked incomplete",
        ),
        (
            RECURRING_MEETING,
            sub.as_str(),
            "a recurring meeting's first sub-meeting",
        ),
        (NOT_STARTED_MEETING, "", "not started: an empty list"),
        (
            STANDING_MEETING,
            days_62.as_str(),
            "a room open for 60 days, read over 62: two upstream windows",
        ),
    ];
    for (id, query, what) in meetings {
        println!("# {what}");
        println!(
            "curl -H 'Authorization: Bearer {key}' '{base}/meetings/{id}/participants{query}'"
        );
    }
    println!("# the live meeting's attendance per person, then as a CSV file for Excel");
    println!("curl -H 'Authorization: Bearer {key}' '{base}/meetings/{LIVE_MEETING}/attendance'");
    println!(
        "curl -OJ -H 'Authorization: Bearer {key}' '{base}/meetings/{LIVE_MEETING}/attendance?format=csv'"
    );
    println!();
    println!("API documentation: {base}/swagger-ui  (OpenAPI document: {base}/openapi.json)");
    println!("health: {base}/healthz  readiness: {base}/readyz  metrics: {base}/metrics");
}

/// `wemeet-gateway simulate`: the simulated upstream alone.
pub async fn simulate(args: SimulateArgs) -> Result<(), StartError> {
    let (credentials, demo) = match args.credentials.resolve()? {
        Some(credentials) => (credentials, false),
        None => (demo_credentials(), true),
    };
    let dataset = match &args.dataset {
        Some(path) => Arc::new(Dataset::load(path)?),
        None => demo_dataset(),
    };
    let meetings = dataset.meetings.len();
    let simulator = Simulator::new(SimulatorConfig {
        credentials,
        calls_per_minute: args.calls_per_minute,
        calls_per_day: args.calls_per_day,
        dataset,
    });
    let webhook_keys = args.webhooks.resolve()?;
    if let Some(url) = args.webhook_url {
        let keys = webhook_keys.ok_or(ConfigError::Missing {
            name: "WEMEET_WEBHOOK_TOKEN (to sign the events for SIMULATOR_WEBHOOK_URL)",
        })?;
        simulator.start_events(EventFeed {
            url,
            keys,
            every: args.events_every,
        });
    }
    let server = Server::bind(&args.listen.to_string(), simulator.router()).await?;
    println!(
        "simulated Tencent Meeting API on http://{} ({meetings} meetings, {} calls/minute)",
        server.local_addr(),
        args.calls_per_minute
    );
    if demo {
        // Demo credentials only: configured ones are never printed.
        let [app_id, secret_id, secret_key] = DEMO_CREDENTIALS;
        println!(
            "demo credentials: WEMEET_APP_ID={app_id} WEMEET_SECRET_ID={secret_id} WEMEET_SECRET_KEY={secret_key}"
        );
    }
    server.serve(shutdown_signal()).await?;
    Ok(())
}

/// `wemeet-gateway healthcheck`: asks the local server's `/healthz`; an error when it does not
/// answer 200 within the timeout.
pub async fn healthcheck(args: HealthcheckArgs) -> Result<(), StartError> {
    let url = format!("http://{}/healthz", loopback_for(&args.listen));
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(args.timeout)
        .no_proxy()
        .build()
        .map_err(|e| StartError::Unhealthy(format!("cannot make an HTTP client: {e}")))?;
    let response = client
        .get(&url)
        .send()
        .await
        .map_err(|e| StartError::Unhealthy(format!("{url}: {e}")))?;
    match response.status().as_u16() {
        200 => {
            println!("healthy: {url}");
            Ok(())
        }
        status => Err(StartError::Unhealthy(format!("{url} answered {status}"))),
    }
}

/// Where to reach a server listening on `listen`: an unspecified address is reached on loopback.
fn loopback_for(listen: &str) -> String {
    match listen.parse::<SocketAddr>() {
        Ok(mut addr) if addr.ip().is_unspecified() => {
            addr.set_ip(match addr.ip() {
                IpAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
                IpAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
            });
            addr.to_string()
        }
        _ => listen.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_listen_addresses_are_checked_on_loopback() {
        assert_eq!(loopback_for("0.0.0.0:8080"), "127.0.0.1:8080");
        assert_eq!(loopback_for("[::]:8080"), "[::1]:8080");
        assert_eq!(loopback_for("10.0.0.5:8080"), "10.0.0.5:8080");
        assert_eq!(loopback_for("localhost:8080"), "localhost:8080");
    }
}
