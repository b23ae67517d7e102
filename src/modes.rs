//! The binary's modes, each a function from its parsed arguments to a running service.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderValue;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use crate::app::{AppConfig, router};
use crate::cache::CacheConfig;
use crate::config::{
    CacheArgs, ConfigError, DemoArgs, HealthcheckArgs, ServeArgs, SimulateArgs, demo_credentials,
    parse_api_key_digests, resolve_secret,
};
use crate::server::{BindError, Server, shutdown_signal};
use crate::simulator::dataset::{Dataset, DatasetError};
use crate::simulator::demo::{
    HUGE_MEETING, LIVE_MEETING, NOT_STARTED_MEETING, RECURRING_MEETING, SEED_MEETING, SUB_MEETINGS,
};
use crate::simulator::{Simulator, SimulatorConfig, demo_dataset};
use crate::upstream::client::ClientBuildError;
use crate::upstream::{ClientConfig, Operator, RetryPolicy, UpstreamClient};

/// Why a mode could not start or stopped with an error; the message is for the operator.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("WEMEET_API_BASE and credentials: {0}")]
    Client(#[from] ClientBuildError),
    #[error("server error: {0}")]
    Serve(#[from] std::io::Error),
    #[error("unhealthy: {0}")]
    Unhealthy(String),
}

/// `wemeet-gateway serve`: the production gateway.
pub async fn serve(args: ServeArgs) -> Result<(), StartError> {
    let gateway = args.gateway;
    let upstream = args.upstream;
    if gateway.request_timeout <= args.cache.fetch_wait {
        return Err(ConfigError::Invalid {
            name: "GATEWAY_REQUEST_TIMEOUT",
            reason: "must be longer than GATEWAY_FETCH_WAIT, or callers time out before they get the list or a 202".into(),
        }
        .into());
    }
    let credentials = upstream
        .credentials
        .resolve()?
        .ok_or(ConfigError::MissingCredentials {
            names: "WEMEET_APP_ID, WEMEET_SECRET_ID, WEMEET_SECRET_KEY".into(),
        })?;
    let keys = resolve_secret("GATEWAY_API_KEYS", gateway.api_keys, gateway.api_keys_file)?;
    let api_key_digests = keys
        .as_ref()
        .map(parse_api_key_digests)
        .transpose()?
        .unwrap_or_default();
    match (api_key_digests.is_empty(), gateway.allow_anonymous) {
        (true, false) => {
            return Err(ConfigError::Invalid {
                name: "GATEWAY_API_KEYS",
                reason: "no API keys configured; set GATEWAY_API_KEYS (SHA-256 digests) or GATEWAY_ALLOW_ANONYMOUS=true".into(),
            }
            .into());
        }
        // Callers without a key would get in, so the keys would only turn away wrong ones.
        (false, true) => {
            return Err(ConfigError::Invalid {
                name: "GATEWAY_ALLOW_ANONYMOUS",
                reason: "is true while GATEWAY_API_KEYS is set: every caller would get in without a key; set one or the other".into(),
            }
            .into());
        }
        _ => {}
    }
    let default_operator = upstream
        .operator_userid
        .as_deref()
        .map(Operator::user_id)
        .transpose()
        .map_err(|e| ConfigError::Invalid {
            name: "WEMEET_OPERATOR_USERID",
            reason: e.reason,
        })?;
    let cors_origins = cors_origins(&gateway.cors_origins)?;
    let client = UpstreamClient::new(ClientConfig {
        base_url: upstream.api_base,
        credentials,
        calls_per_minute: upstream.calls_per_minute,
        page_timeout: upstream.page_timeout,
        list_deadline: upstream.fetch_deadline,
        retry: RetryPolicy::default(),
    })?;
    let app = router(AppConfig {
        upstream: client,
        cache: cache_config(&args.cache),
        default_operator,
        api_key_digests,
        allow_anonymous: gateway.allow_anonymous,
        cors_origins,
        request_timeout: gateway.request_timeout,
    });
    let server = Server::bind(&gateway.listen, app).await?;
    tracing::info!(address = %server.local_addr(), anonymous = gateway.allow_anonymous, "gateway listening");
    server
        .serve_with_grace(shutdown_signal(), gateway.shutdown_grace)
        .await?;
    tracing::info!("gateway stopped");
    Ok(())
}

fn cache_config(args: &CacheArgs) -> CacheConfig {
    CacheConfig {
        max_bytes: args.cache_max_bytes,
        ttl_ended: args.cache_ttl_ended,
        ttl_live: args.cache_ttl_live,
        ttl_not_started: args.cache_ttl_not_started,
        stale_if_error: args.cache_stale_if_error,
        fetch_wait: args.fetch_wait,
        not_found_ttl: Duration::from_secs(30),
    }
}

fn cors_origins(origins: &[String]) -> Result<Vec<HeaderValue>, ConfigError> {
    origins
        .iter()
        .map(|o| o.trim())
        .filter(|o| !o.is_empty())
        .map(|origin| {
            // Browsers send the origin's serialized form (lower-case host, no default port, no
            // path); anything else would never match, so it is refused here.
            let serialized = reqwest::Url::parse(origin)
                .ok()
                .filter(|url| matches!(url.scheme(), "http" | "https"))
                .map(|url| url.origin().ascii_serialization());
            (serialized.as_deref() == Some(origin))
                .then(|| HeaderValue::from_str(origin).ok())
                .flatten()
                .ok_or_else(|| ConfigError::Invalid {
                name: "GATEWAY_CORS_ORIGINS",
                reason: format!(
                    "{origin:?} is not an origin as browsers send it, like https://app.example.com{}",
                    serialized
                        .filter(|s| s != "null")
                        .map(|s| format!(" (did you mean {s}?)"))
                        .unwrap_or_default()
                ),
            })
        })
        .collect()
}

/// `wemeet-gateway demo`: the simulator and the gateway in one process, on loopback.
pub async fn demo(args: DemoArgs) -> Result<(), StartError> {
    let credentials = demo_credentials();
    let simulator = Simulator::new(SimulatorConfig {
        credentials: credentials.clone(),
        calls_per_minute: args.upstream_calls_per_minute,
        calls_per_day: u32::MAX,
        dataset: demo_dataset(),
    });
    let upstream_addr = Server::bind("127.0.0.1:0", simulator.router())
        .await?
        .spawn();

    let key = format!("demo-{}", hex::encode(rand::random::<[u8; 16]>()));
    let client = UpstreamClient::new(ClientConfig {
        base_url: format!("http://{upstream_addr}"),
        credentials,
        calls_per_minute: (args.upstream_calls_per_minute / 5 * 4).max(1),
        page_timeout: Duration::from_secs(10),
        list_deadline: Duration::from_secs(300),
        retry: RetryPolicy::default(),
    })?;
    let app = router(AppConfig {
        upstream: client,
        cache: CacheConfig::default(),
        default_operator: Some(Operator::user_id("owner1").expect("a valid userid")),
        api_key_digests: vec![Sha256::digest(key.as_bytes()).into()],
        allow_anonymous: false,
        cors_origins: Vec::new(),
        request_timeout: Duration::from_secs(300),
    });
    let server = Server::bind(&args.listen, app).await?;
    let base = format!("http://{}", server.local_addr());
    print_demo_banner(&base, &key, &upstream_addr.to_string());
    server
        .serve_with_grace(shutdown_signal(), Duration::from_secs(5))
        .await?;
    Ok(())
}

fn print_demo_banner(base: &str, key: &str, upstream: &str) {
    println!(
        "wemeet-gateway demo: the gateway on {base}, a simulated Tencent Meeting API on http://{upstream}"
    );
    println!("demo API key (valid until this process stops): {key}");
    println!();
    let sub = format!("?sub_meeting_id={}", SUB_MEETINGS[0]);
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
    ];
    for (id, query, what) in meetings {
        println!("# {what}");
        println!(
            "curl -H 'Authorization: Bearer {key}' '{base}/meetings/{id}/participants{query}'"
        );
    }
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
        credentials: credentials.clone(),
        calls_per_minute: args.calls_per_minute,
        calls_per_day: args.calls_per_day,
        dataset,
    });
    let server = Server::bind(&args.listen.to_string(), simulator.router()).await?;
    println!(
        "simulated Tencent Meeting API on http://{} ({meetings} meetings, {} calls/minute)",
        server.local_addr(),
        args.calls_per_minute
    );
    if demo {
        // Demo credentials only: configured ones are never printed.
        println!(
            "demo credentials: WEMEET_APP_ID={} WEMEET_SECRET_ID={} WEMEET_SECRET_KEY={}",
            credentials.app_id,
            credentials.secret_id,
            credentials.secret_key.expose_secret()
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
