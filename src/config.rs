//! Typed configuration: every setting is a flag and an environment variable, every secret may
//! instead come from a file named by `<NAME>_FILE`, and everything is checked once at start-up,
//! failing with the variable's name.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::http::HeaderValue;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use secrecy::{ExposeSecret, SecretString};

use crate::cache::CacheConfig;
use crate::cluster::RedisSettings;
use crate::server::ConnectionLimits;
use crate::upstream::signing::InvalidCredentials;
use crate::upstream::{ClientConfig, Credentials, Operator, RetryPolicy};
use crate::webhooks::delivery::{InvalidWebhookKeys, WebhookKeys};

#[derive(Debug, Parser)]
#[command(
    name = "wemeet-gateway",
    version,
    about,
    after_help = "With no mode given, runs `serve`."
)]
pub struct Cli {
    /// Log format: `human` for people, `json` for log collectors.
    #[arg(long, env = "GATEWAY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human, global = true)]
    pub log_format: LogFormat,

    /// The mode to run.
    #[command(subcommand)]
    pub mode: Mode,
}

impl Cli {
    /// Parses `args` (the program's name first), running `serve` when no mode is named. Only
    /// the chosen mode's settings are read, so that a bad serve variable cannot break, say, the
    /// container's health check.
    pub fn try_parse_with_default_mode(
        args: impl IntoIterator<Item = OsString>,
    ) -> Result<Self, clap::Error> {
        let mut args: Vec<OsString> = args.into_iter().collect();
        let command = Self::command();
        // Global options may come before the mode (`--log-format json demo`); no option takes
        // a mode's name as its value.
        let names_a_mode_or_asks_for_help =
            args.iter().skip(1).filter_map(|a| a.to_str()).any(|a| {
                matches!(a, "help" | "-h" | "--help" | "-V" | "--version")
                    || command.get_subcommands().any(|mode| mode.get_name() == a)
            });
        if !names_a_mode_or_asks_for_help {
            args.insert(1.min(args.len()), "serve".into());
        }
        Self::try_parse_from(args)
    }
}

/// A parse error as one line that names the environment variable behind the bad value, or
/// `None` when clap should print it itself (help, version).
pub fn one_line_error(error: &clap::Error) -> Option<String> {
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        return None;
    }
    let rendered = error.render().to_string();
    let first = rendered.lines().next().unwrap_or_default();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let variable = match error.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) => env_of(arg),
        _ => None,
    };
    Some(match variable {
        Some(variable) => format!("{variable}: {first}"),
        None => first.to_owned(),
    })
}

/// The environment variable of a flag as clap names it in errors (`--cache-max-bytes <N>`).
fn env_of(arg: &str) -> Option<String> {
    let long = arg.split_whitespace().next()?.strip_prefix("--")?;
    let command = Cli::command();
    command
        .get_subcommands()
        .chain(std::iter::once(&command))
        .flat_map(|c| c.get_arguments())
        .find(|a| a.get_long() == Some(long))
        .and_then(|a| a.get_env())
        .map(|env| env.to_string_lossy().into_owned())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Mode {
    /// Run the production gateway (the default).
    Serve(Box<ServeArgs>),
    /// Run the gateway and a simulated Tencent Meeting API with demo meetings, on loopback.
    Demo(DemoArgs),
    /// Run the simulated Tencent Meeting API alone (for compose, tests and benchmarks).
    Simulate(Box<SimulateArgs>),
    /// Print the OpenAPI document (to regenerate `openapi/openapi.json`).
    Openapi,
    /// Exit 0 when the local gateway (or simulator) answers `GET /healthz` (for container health
    /// checks: the image has no curl).
    Healthcheck(HealthcheckArgs),
}

#[derive(Debug, Clone, Args)]
pub struct HealthcheckArgs {
    /// The address the server listens on; an unspecified one (`0.0.0.0`, `[::]`) is checked on
    /// loopback.
    #[arg(long, env = "GATEWAY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Longest wait for the answer.
    #[arg(long, default_value = "3s", value_parser = positive_duration)]
    pub timeout: Duration,
}

/// How the gateway serves its callers: listener, inbound keys, CORS, timeouts.
#[derive(Debug, Clone, Args)]
pub struct GatewayArgs {
    /// Address to listen on.
    #[arg(long, env = "GATEWAY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Accepted API keys, as comma-separated SHA-256 hex digests of the keys
    /// (`printf %s KEY | sha256sum`), each optionally followed by `:N`, that key's own limit of
    /// requests a minute (0: unlimited).
    #[arg(long, env = "GATEWAY_API_KEYS", hide_env_values = true)]
    pub api_keys: Option<SecretString>,
    /// File holding GATEWAY_API_KEYS.
    #[arg(long, env = "GATEWAY_API_KEYS_FILE")]
    pub api_keys_file: Option<PathBuf>,
    /// Serve callers without an API key. Required to start with no keys configured.
    #[arg(long, env = "GATEWAY_ALLOW_ANONYMOUS", default_value_t = false, action = clap::ArgAction::Set)]
    pub allow_anonymous: bool,
    /// Browser origins allowed by CORS, comma-separated (e.g. `https://app.example.com`).
    #[arg(long, env = "GATEWAY_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Longest time the gateway spends on one request before answering 504.
    #[arg(long, env = "GATEWAY_REQUEST_TIMEOUT", default_value = "60s", value_parser = positive_duration)]
    pub request_timeout: Duration,
    /// How long in-flight requests may run after SIGTERM or SIGINT before the process exits.
    #[arg(long, env = "GATEWAY_SHUTDOWN_GRACE", default_value = "30s", value_parser = duration)]
    pub shutdown_grace: Duration,
    /// Requests a minute each API key may make (bursts of a tenth at once), unless its entry
    /// in GATEWAY_API_KEYS says otherwise; past it, 429. 0: unlimited.
    #[arg(long, env = "GATEWAY_RATE_LIMIT", default_value_t = 3000)]
    pub rate_limit: u32,
    /// Longest time a client may take to send a request's head; an idle keep-alive connection
    /// is closed after as long.
    #[arg(long, env = "GATEWAY_HEADER_TIMEOUT", default_value = "10s", value_parser = positive_duration)]
    pub header_timeout: Duration,
    /// Connections open at once; past it, new ones are answered 503 and closed. Default: the
    /// open-file limit (`ulimit -n`) less 128, at most 10,000.
    #[arg(long, env = "GATEWAY_MAX_CONNECTIONS", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: Option<u32>,
    /// Requests to the API's routes the gateway holds at once; past it, 503 with Retry-After
    /// rather than a queue.
    #[arg(long, env = "GATEWAY_MAX_IN_FLIGHT", default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_in_flight: u32,
}

/// How the gateway talks to Tencent Meeting.
#[derive(Debug, Clone, Args)]
pub struct UpstreamArgs {
    /// Base URL of the Tencent Meeting API: scheme, host and optional port.
    #[arg(
        long,
        env = "WEMEET_API_BASE",
        default_value = "https://api.meeting.qq.com"
    )]
    pub api_base: String,
    /// Operator on whose behalf lists are read when the caller names none (an enterprise
    /// userid: the meetings' creator or an enterprise admin).
    #[arg(long, env = "WEMEET_OPERATOR_USERID")]
    pub operator_userid: Option<String>,
    /// Outbound calls per minute, shared by every fetch (Tencent allows 300 for the whole app).
    #[arg(long, env = "WEMEET_CALLS_PER_MINUTE", default_value_t = 240, value_parser = clap::value_parser!(u32).range(1..))]
    pub calls_per_minute: u32,
    /// Outbound calls per day (China time), counted across replicas when GATEWAY_REDIS_URL is
    /// set (Tencent allows 200,000 for the whole app).
    #[arg(long, env = "WEMEET_CALLS_PER_DAY", default_value_t = 200_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub calls_per_day: u32,
    /// Longest wait for one upstream page.
    #[arg(long, env = "WEMEET_PAGE_TIMEOUT", default_value = "10s", value_parser = positive_duration)]
    pub page_timeout: Duration,
    /// Longest time to fetch a whole list, paging, pacing and retries included.
    #[arg(long, env = "WEMEET_FETCH_DEADLINE", default_value = "5m", value_parser = positive_duration)]
    pub fetch_deadline: Duration,
    #[command(flatten)]
    pub credentials: CredentialArgs,
}

/// How the gateway caches lists.
#[derive(Debug, Clone, Args)]
pub struct CacheArgs {
    /// Bytes of responses the cache may hold (bytes, or with a unit: `256MiB`, `1GB`).
    #[arg(long, env = "GATEWAY_CACHE_MAX_BYTES", default_value = "256MiB", value_parser = byte_size)]
    pub cache_max_bytes: u64,
    /// Bytes that lists being fetched and rendered may take together, beyond the cache's bound;
    /// past it, fetches wait for their turn (callers get 202 with the progress meanwhile).
    #[arg(long, env = "GATEWAY_WORK_MAX_BYTES", default_value = "256MiB", value_parser = byte_size)]
    pub work_max_bytes: u64,
    /// How long the list of a meeting that has ended stays fresh.
    #[arg(long, env = "GATEWAY_CACHE_TTL_ENDED", default_value = "1h", value_parser = duration)]
    pub cache_ttl_ended: Duration,
    /// How long the list of a meeting in progress stays fresh.
    #[arg(long, env = "GATEWAY_CACHE_TTL_LIVE", default_value = "30s", value_parser = duration)]
    pub cache_ttl_live: Duration,
    /// How long the (empty) list of a meeting that has not started stays fresh.
    #[arg(long, env = "GATEWAY_CACHE_TTL_NOT_STARTED", default_value = "30s", value_parser = duration)]
    pub cache_ttl_not_started: Duration,
    /// How long past its freshness a list may still be served while the upstream fails.
    #[arg(long, env = "GATEWAY_CACHE_STALE_IF_ERROR", default_value = "24h", value_parser = duration)]
    pub cache_stale_if_error: Duration,
    /// How long a caller waits for a list being fetched before it gets the stale list or a 202.
    #[arg(long, env = "GATEWAY_FETCH_WAIT", default_value = "20s", value_parser = duration)]
    pub fetch_wait: Duration,
}

/// How replicas share the quota through Redis (optional).
#[derive(Debug, Clone, Args)]
pub struct RedisArgs {
    /// Redis shared by every replica: `redis://[user:password@]host[:port][/db]` or
    /// `rediss://` for TLS. Unset: each process keeps its own quota and cache.
    #[arg(long, env = "GATEWAY_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<SecretString>,
    /// File holding GATEWAY_REDIS_URL.
    #[arg(long, env = "GATEWAY_REDIS_URL_FILE")]
    pub redis_url_file: Option<PathBuf>,
    /// Put before every Redis key, so that several deployments can share one Redis.
    #[arg(long, env = "GATEWAY_REDIS_PREFIX", default_value = "wemeet-gateway:")]
    pub redis_prefix: String,
    /// Outbound calls per minute of this replica alone while Redis cannot be reached: its safe
    /// share of WEMEET_CALLS_PER_MINUTE.
    #[arg(long, env = "GATEWAY_REDIS_FALLBACK_CALLS_PER_MINUTE", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..))]
    pub redis_fallback_calls_per_minute: u32,
}

/// Tencent's event deliveries (optional).
#[derive(Debug, Clone, Args)]
pub struct WebhookArgs {
    #[command(flatten)]
    pub keys: WebhookKeyArgs,
    /// How often a list kept current by events is fetched whole again, replacing the records
    /// made from events.
    #[arg(long, env = "GATEWAY_EVENTS_RECONCILE", default_value = "5m", value_parser = positive_duration)]
    pub events_reconcile: Duration,
}

/// The event subscription's secrets.
#[derive(Debug, Clone, Args)]
pub struct WebhookKeyArgs {
    /// The Token of the event subscription in Tencent's console: enables `/webhooks/wemeet`,
    /// where Tencent delivers join and leave events (and signs the simulator's deliveries).
    #[arg(long, env = "WEMEET_WEBHOOK_TOKEN", hide_env_values = true)]
    pub webhook_token: Option<SecretString>,
    /// File holding WEMEET_WEBHOOK_TOKEN.
    #[arg(long, env = "WEMEET_WEBHOOK_TOKEN_FILE")]
    pub webhook_token_file: Option<PathBuf>,
    /// The subscription's EncodingAESKey (43 characters), when deliveries are encrypted.
    #[arg(long, env = "WEMEET_WEBHOOK_AES_KEY", hide_env_values = true)]
    pub webhook_aes_key: Option<SecretString>,
    /// File holding WEMEET_WEBHOOK_AES_KEY.
    #[arg(long, env = "WEMEET_WEBHOOK_AES_KEY_FILE")]
    pub webhook_aes_key_file: Option<PathBuf>,
}

impl WebhookKeyArgs {
    /// The subscription's keys, when a token is set.
    pub fn resolve(self) -> Result<Option<WebhookKeys>, ConfigError> {
        let token = resolve_secret(
            "WEMEET_WEBHOOK_TOKEN",
            self.webhook_token,
            self.webhook_token_file,
        )?;
        let aes_key = resolve_secret(
            "WEMEET_WEBHOOK_AES_KEY",
            self.webhook_aes_key,
            self.webhook_aes_key_file,
        )?;
        let Some(token) = token else {
            if aes_key.is_some() {
                return Err(ConfigError::Invalid {
                    name: "WEMEET_WEBHOOK_AES_KEY",
                    reason: "is set without WEMEET_WEBHOOK_TOKEN, which enables the webhooks"
                        .into(),
                });
            }
            return Ok(None);
        };
        WebhookKeys::new(token, aes_key.as_ref())
            .map(Some)
            .map_err(|e| ConfigError::Invalid {
                name: match e {
                    InvalidWebhookKeys::EmptyToken => "WEMEET_WEBHOOK_TOKEN",
                    InvalidWebhookKeys::AesKey => "WEMEET_WEBHOOK_AES_KEY",
                },
                reason: e.to_string(),
            })
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub gateway: GatewayArgs,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub upstream: UpstreamArgs,
    #[command(flatten)]
    pub redis: RedisArgs,
    #[command(flatten)]
    pub webhooks: WebhookArgs,
}

/// Everything a gateway is built from, checked: what [`ServeArgs::into_settings`] makes of the
/// flags and variables, and what the demo, the tests and the benchmarks build directly.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to listen on (port 0: any free port).
    pub listen: String,
    pub upstream: ClientConfig,
    pub cache: CacheConfig,
    /// The operator used when a caller names none.
    pub default_operator: Option<Operator>,
    /// SHA-256 digests of the accepted API keys.
    pub api_key_digests: Vec<[u8; 32]>,
    /// Each key's own requests a minute, by the digest's index (`None`: `rate_limit`).
    pub api_key_rates: Vec<Option<u32>>,
    /// Requests a minute a key may make, unless its own limit says otherwise (0: unlimited).
    pub rate_limit: u32,
    /// Requests to the API's routes held at once.
    pub max_in_flight: usize,
    /// The header timeout and the connection cap.
    pub connections: ConnectionLimits,
    /// Serve callers without a key.
    pub allow_anonymous: bool,
    /// Browser origins allowed by CORS, as browsers send them.
    pub cors_origins: Vec<HeaderValue>,
    /// Longest time for one request.
    pub request_timeout: Duration,
    /// How long in-flight requests may finish after the shutdown signal.
    pub shutdown_grace: Duration,
    /// Redis shared by the replicas; `None`: this process alone.
    pub redis: Option<RedisSettings>,
    /// Tencent's event subscription; `None`: `/webhooks/wemeet` answers 404.
    pub webhooks: Option<WebhookKeys>,
    /// How long a list kept current by events stays fresh after its fetch.
    pub events_reconcile: Duration,
}

impl Settings {
    /// A gateway on `listen` reading from `upstream`, with the documented defaults for the rest:
    /// no keys, no default operator, no CORS.
    pub fn new(listen: impl Into<String>, upstream: ClientConfig) -> Self {
        Self {
            listen: listen.into(),
            upstream,
            cache: CacheConfig::default(),
            default_operator: None,
            api_key_digests: Vec::new(),
            api_key_rates: Vec::new(),
            rate_limit: 3000,
            max_in_flight: 512,
            connections: ConnectionLimits::default(),
            allow_anonymous: false,
            cors_origins: Vec::new(),
            request_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(30),
            redis: None,
            webhooks: None,
            events_reconcile: Duration::from_secs(300),
        }
    }
}

impl ServeArgs {
    /// Checks every setting, alone and together, into the gateway's settings; an error names
    /// the variable.
    pub fn into_settings(self) -> Result<Settings, ConfigError> {
        let (gateway, cache, upstream) = (self.gateway, self.cache, self.upstream);
        let redis = redis_settings(self.redis, upstream.calls_per_day)?;
        let events_reconcile = self.webhooks.events_reconcile;
        let webhooks = self.webhooks.keys.resolve()?;
        if gateway.request_timeout <= cache.fetch_wait {
            return Err(ConfigError::Invalid {
                name: "GATEWAY_REQUEST_TIMEOUT",
                reason: "must be longer than GATEWAY_FETCH_WAIT, or callers time out before they get the list or a 202".into(),
            });
        }
        if crate::upstream::client::origin(&upstream.api_base).is_none() {
            return Err(ConfigError::Invalid {
                name: "WEMEET_API_BASE",
                // Not repeated: a URL may carry a password.
                reason: "must be scheme, host and optional port only, like https://api.meeting.qq.com (no path, query or user)".into(),
            });
        }
        let credentials =
            upstream
                .credentials
                .resolve()?
                .ok_or(ConfigError::MissingCredentials {
                    names: "WEMEET_APP_ID, WEMEET_SECRET_ID, WEMEET_SECRET_KEY".into(),
                })?;
        let keys = resolve_secret("GATEWAY_API_KEYS", gateway.api_keys, gateway.api_keys_file)?;
        let (api_key_digests, api_key_rates): (Vec<_>, Vec<_>) = keys
            .as_ref()
            .map(parse_api_key_digests)
            .transpose()?
            .unwrap_or_default()
            .into_iter()
            .unzip();
        match (api_key_digests.is_empty(), gateway.allow_anonymous) {
            (true, false) => {
                return Err(ConfigError::Invalid {
                    name: "GATEWAY_API_KEYS",
                    reason: "no API keys configured; set GATEWAY_API_KEYS (SHA-256 digests) or GATEWAY_ALLOW_ANONYMOUS=true".into(),
                });
            }
            // Callers without a key would get in, so the keys would only turn away wrong ones.
            (false, true) => {
                return Err(ConfigError::Invalid {
                    name: "GATEWAY_ALLOW_ANONYMOUS",
                    reason: "is true while GATEWAY_API_KEYS is set: every caller would get in without a key; set one or the other".into(),
                });
            }
            (true, true) | (false, false) => {}
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
        Ok(Settings {
            listen: gateway.listen,
            upstream: ClientConfig {
                base_url: upstream.api_base,
                credentials,
                calls_per_minute: upstream.calls_per_minute,
                calls_per_day: upstream.calls_per_day,
                page_timeout: upstream.page_timeout,
                list_deadline: upstream.fetch_deadline,
                retry: RetryPolicy::default(),
            },
            cache: CacheConfig {
                max_bytes: cache.cache_max_bytes,
                work_max_bytes: cache.work_max_bytes,
                ttl_ended: cache.cache_ttl_ended,
                ttl_live: cache.cache_ttl_live,
                ttl_not_started: cache.cache_ttl_not_started,
                stale_if_error: cache.cache_stale_if_error,
                fetch_wait: cache.fetch_wait,
                not_found_ttl: CacheConfig::default().not_found_ttl,
            },
            default_operator,
            api_key_digests,
            api_key_rates,
            rate_limit: gateway.rate_limit,
            max_in_flight: gateway.max_in_flight as usize,
            connections: ConnectionLimits {
                header_timeout: gateway.header_timeout,
                max_connections: gateway
                    .max_connections
                    .map_or_else(crate::server::default_max_connections, |n| n as usize),
            },
            allow_anonymous: gateway.allow_anonymous,
            cors_origins: cors_origins(&gateway.cors_origins)?,
            request_timeout: gateway.request_timeout,
            shutdown_grace: gateway.shutdown_grace,
            redis,
            webhooks,
            events_reconcile,
        })
    }
}

/// The Redis settings, when a URL is set; the URL is checked but never repeated (it may carry a
/// password).
fn redis_settings(
    args: RedisArgs,
    calls_per_day: u32,
) -> Result<Option<RedisSettings>, ConfigError> {
    let Some(url) = resolve_secret("GATEWAY_REDIS_URL", args.redis_url, args.redis_url_file)?
    else {
        return Ok(None);
    };
    crate::cluster::check_url(&url).map_err(|e| ConfigError::Invalid {
        name: "GATEWAY_REDIS_URL",
        reason: e.to_string(),
    })?;
    if args.redis_prefix.is_empty() {
        return Err(ConfigError::Invalid {
            name: "GATEWAY_REDIS_PREFIX",
            reason: "must not be empty: it keeps this deployment's keys apart from others'".into(),
        });
    }
    Ok(Some(RedisSettings {
        url,
        prefix: args.redis_prefix,
        fallback_calls_per_minute: args.redis_fallback_calls_per_minute,
        calls_per_day,
    }))
}

/// `GATEWAY_CORS_ORIGINS` as header values. Browsers send an origin's serialized form
/// (lower-case host, no default port, no path); anything else would never match, so it is
/// refused, with the form that was probably meant.
fn cors_origins(origins: &[String]) -> Result<Vec<HeaderValue>, ConfigError> {
    origins
        .iter()
        .map(|o| o.trim())
        .filter(|o| !o.is_empty())
        .map(|origin| {
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

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Address the demo gateway listens on.
    #[arg(long, env = "GATEWAY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Calls per minute the demo's simulated upstream allows; the gateway paces at 80 % of it.
    /// Higher than Tencent's 300 so that the 60,000-record meeting loads in seconds.
    #[arg(long, default_value_t = 30_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub upstream_calls_per_minute: u32,
    /// How often someone joins or leaves the live demo meeting (reported to the gateway as
    /// Tencent's events); `0s` keeps the meeting still.
    #[arg(long, default_value = "2s", value_parser = duration)]
    pub events_every: Duration,
}

/// Parses `268435456`, `256MiB`, `1GB`.
fn byte_size(value: &str) -> Result<u64, String> {
    value
        .trim()
        .parse::<bytesize::ByteSize>()
        .map(|size| size.as_u64())
        .map_err(|e| format!("{e} (use e.g. 268435456, 256MiB, 1GB)"))
}

/// The longest duration any setting takes: a year. Far beyond any sensible value, and far from
/// where adding it to a clock reading could overflow.
const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

/// Parses `30s`, `5m`, `1h`, `250ms`, up to a year.
fn duration(value: &str) -> Result<Duration, String> {
    let parsed =
        humantime::parse_duration(value).map_err(|e| format!("{e} (use e.g. 30s, 5m, 1h)"))?;
    if parsed > MAX_DURATION {
        return Err(format!("{value} is longer than a year"));
    }
    Ok(parsed)
}

/// A duration that must not be zero: a timeout or deadline of zero fails everything.
fn positive_duration(value: &str) -> Result<Duration, String> {
    duration(value).and_then(|d| {
        if d.is_zero() {
            Err("must be longer than zero".into())
        } else {
            Ok(d)
        }
    })
}

/// The enterprise app's credentials. SecretId and SecretKey may be given as files.
#[derive(Debug, Clone, Args)]
pub struct CredentialArgs {
    /// Tencent Meeting AppId of the enterprise.
    #[arg(long, env = "WEMEET_APP_ID")]
    pub app_id: Option<String>,
    /// SdkId, only when one was assigned.
    #[arg(long, env = "WEMEET_SDK_ID")]
    pub sdk_id: Option<String>,
    /// SecretId of the enterprise app.
    #[arg(long, env = "WEMEET_SECRET_ID", hide_env_values = true)]
    pub secret_id: Option<SecretString>,
    /// File holding the SecretId (instead of WEMEET_SECRET_ID).
    #[arg(long, env = "WEMEET_SECRET_ID_FILE")]
    pub secret_id_file: Option<PathBuf>,
    /// SecretKey of the enterprise app.
    #[arg(long, env = "WEMEET_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<SecretString>,
    /// File holding the SecretKey (instead of WEMEET_SECRET_KEY).
    #[arg(long, env = "WEMEET_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct SimulateArgs {
    /// Address to listen on.
    #[arg(long, env = "SIMULATOR_LISTEN", default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,
    /// Calls accepted per calendar minute; more are answered 190310.
    #[arg(long, env = "SIMULATOR_CALLS_PER_MINUTE", default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..))]
    pub calls_per_minute: u32,
    /// Calls accepted per calendar day; more are answered 190311.
    #[arg(long, env = "SIMULATOR_CALLS_PER_DAY", default_value_t = 200_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub calls_per_day: u32,
    /// A dataset file (JSON, see `simulator::dataset::DatasetFile`); the demo set when absent.
    #[arg(long, env = "SIMULATOR_DATASET")]
    pub dataset: Option<PathBuf>,
    /// Make the live demo meeting change (someone joins or leaves every SIMULATOR_EVENTS_EVERY)
    /// and deliver each change, as Tencent's event, to this URL (a gateway's /webhooks/wemeet),
    /// signed with WEMEET_WEBHOOK_TOKEN.
    #[arg(long, env = "SIMULATOR_WEBHOOK_URL")]
    pub webhook_url: Option<String>,
    /// How often the live demo meeting changes, with SIMULATOR_WEBHOOK_URL.
    #[arg(long, env = "SIMULATOR_EVENTS_EVERY", default_value = "2s", value_parser = positive_duration)]
    pub events_every: Duration,
    #[command(flatten)]
    pub webhooks: WebhookKeyArgs,
    #[command(flatten)]
    pub credentials: CredentialArgs,
}

/// A configuration value that cannot be used, naming the variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name}: set either {name} or {name}_FILE, not both")]
    Ambiguous { name: &'static str },
    #[error("{name}_FILE: cannot read {path}: {source}")]
    SecretFile {
        name: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("{name}: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("missing {names}: set all of WEMEET_APP_ID, WEMEET_SECRET_ID and WEMEET_SECRET_KEY")]
    MissingCredentials { names: String },
    #[error("{name} is required")]
    Missing { name: &'static str },
}

/// An accepted key's SHA-256 digest, and its own requests a minute when it has a limit of its own.
type KeyEntry = ([u8; 32], Option<u32>);

/// SHA-256 digests of the accepted API keys, from `GATEWAY_API_KEYS` (comma-separated hex),
/// each with its own requests a minute when the entry ends in `:N`.
fn parse_api_key_digests(value: &SecretString) -> Result<Vec<KeyEntry>, ConfigError> {
    let mut keys = Vec::new();
    for (index, item) in value.expose_secret().split(',').enumerate() {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let invalid = |what: &str| ConfigError::Invalid {
            name: "GATEWAY_API_KEYS",
            reason: format!("entry {} {what}", index + 1),
        };
        let (hex_digest, rate) = match item.split_once(':') {
            Some((digest, rate)) => {
                let rate = rate.trim().parse::<u32>().map_err(|_| {
                    invalid("has a rate limit that is not a whole number of requests a minute")
                })?;
                (digest.trim(), Some(rate))
            }
            None => (item, None),
        };
        let mut digest = [0u8; 32];
        hex::decode_to_slice(hex_digest, &mut digest).map_err(|_| {
            invalid("is not a SHA-256 hex digest (64 hex digits); store digests, not keys")
        })?;
        keys.push((digest, rate));
    }
    Ok(keys)
}

/// A secret from its variable or from the file its `_FILE` variable names (trailing line breaks
/// and spaces removed, as secret files usually end with one).
fn resolve_secret(
    name: &'static str,
    value: Option<SecretString>,
    file: Option<PathBuf>,
) -> Result<Option<SecretString>, ConfigError> {
    match (value, file) {
        (Some(_), Some(_)) => Err(ConfigError::Ambiguous { name }),
        (Some(value), None) => Ok(Some(value)),
        (None, None) => Ok(None),
        (None, Some(path)) => {
            let text =
                std::fs::read_to_string(&path).map_err(|source| ConfigError::SecretFile {
                    name,
                    path: path.display().to_string(),
                    source,
                })?;
            Ok(Some(SecretString::from(text.trim_end().to_owned())))
        }
    }
}

/// The demo's AppId, SecretId and SecretKey: what the simulator accepts when none are configured.
/// Demo values only.
pub const DEMO_CREDENTIALS: [&str; 3] = [
    "200000001",
    "AKIDdemoSecretId",
    "demo-secret-key-not-for-production",
];

/// The demo credentials, ready to sign with.
pub fn demo_credentials() -> Credentials {
    let [app_id, secret_id, secret_key] = DEMO_CREDENTIALS;
    Credentials::new(app_id, None, secret_id, SecretString::from(secret_key))
        .expect("the demo credentials are valid")
}

impl CredentialArgs {
    /// The configured credentials, `None` when none of them is set.
    pub fn resolve(self) -> Result<Option<Credentials>, ConfigError> {
        let secret_id = resolve_secret("WEMEET_SECRET_ID", self.secret_id, self.secret_id_file)?;
        let secret_key =
            resolve_secret("WEMEET_SECRET_KEY", self.secret_key, self.secret_key_file)?;
        let sdk_id = self.sdk_id.filter(|s| !s.is_empty());
        let (app_id, secret_id, secret_key) = match (self.app_id, secret_id, secret_key) {
            (None, None, None) if sdk_id.is_none() => return Ok(None),
            (Some(a), Some(i), Some(k)) => (a, i, k),
            (a, i, k) => {
                let missing: Vec<&str> = [
                    (a.is_none(), "WEMEET_APP_ID"),
                    (i.is_none(), "WEMEET_SECRET_ID"),
                    (k.is_none(), "WEMEET_SECRET_KEY"),
                ]
                .into_iter()
                .filter_map(|(missing, name)| missing.then_some(name))
                .collect();
                return Err(ConfigError::MissingCredentials {
                    names: missing.join(", "),
                });
            }
        };
        let credentials = Credentials::new(app_id, sdk_id, secret_id.expose_secret(), secret_key)
            .map_err(|e| ConfigError::Invalid {
            name: match e {
                InvalidCredentials::AppId => "WEMEET_APP_ID",
                InvalidCredentials::SdkId => "WEMEET_SDK_ID",
                InvalidCredentials::SecretId => "WEMEET_SECRET_ID",
                InvalidCredentials::SecretKey => "WEMEET_SECRET_KEY",
            },
            reason: e.to_string(),
        })?;
        Ok(Some(credentials))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_come_from_a_variable_or_a_file_but_not_both() {
        let dir = std::env::temp_dir().join(format!("wemeet-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("key");
        std::fs::write(&file, "from-file\n").expect("write");
        let secret = resolve_secret("X", None, Some(file.clone()))
            .expect("ok")
            .expect("some");
        assert_eq!(secret.expose_secret(), "from-file");
        let both = resolve_secret("X", Some("v".to_owned().into()), Some(file));
        assert!(matches!(both, Err(ConfigError::Ambiguous { name: "X" })));
        let missing = resolve_secret("X", None, Some(dir.join("absent")));
        assert!(
            missing
                .expect_err("absent")
                .to_string()
                .starts_with("X_FILE: ")
        );
    }

    #[test]
    fn partial_credentials_name_what_is_missing() {
        let args = CredentialArgs {
            app_id: Some("1".into()),
            sdk_id: None,
            secret_id: None,
            secret_id_file: None,
            secret_key: Some("k".to_owned().into()),
            secret_key_file: None,
        };
        let err = args.resolve().expect_err("incomplete").to_string();
        assert!(err.starts_with("missing WEMEET_SECRET_ID: "), "{err}");
    }

    #[test]
    fn api_keys_are_digests_and_a_bad_entry_is_named_without_its_value() {
        let good = "a".repeat(64);
        let value = SecretString::from(format!("{good}, {}", "B".repeat(64)));
        assert_eq!(parse_api_key_digests(&value).expect("valid").len(), 2);
        let with_rates = SecretString::from(format!("{good}:120, {}", "B".repeat(64)));
        let parsed = parse_api_key_digests(&with_rates).expect("valid");
        assert_eq!((parsed[0].1, parsed[1].1), (Some(120), None));
        let err = parse_api_key_digests(&SecretString::from(format!("{good}:lots")))
            .expect_err("a rate that is not a number")
            .to_string();
        assert!(
            err.contains("entry 1") && err.contains("rate limit"),
            "{err}"
        );
        let err = parse_api_key_digests(&SecretString::from(format!("{good},my-plain-key")))
            .expect_err("a plain key is refused")
            .to_string();
        assert!(
            err.contains("entry 2") && !err.contains("my-plain-key"),
            "{err}"
        );
    }

    /// `serve`'s arguments with the fewest flags it starts with, and `extra`.
    fn serve_args(extra: &[&str]) -> ServeArgs {
        let required = [
            "wemeet-gateway",
            "serve",
            "--allow-anonymous=true",
            "--app-id=1",
            "--secret-id=id",
            "--secret-key=key",
        ];
        let cli = Cli::try_parse_from(required.iter().chain(extra)).expect("parses");
        match cli.mode {
            Mode::Serve(args) => *args,
            other => panic!("serve was asked for, not {other:?}"),
        }
    }

    /// `Settings::new`, `ClientConfig::new` and `CacheConfig::default` repeat the defaults the
    /// flags document; they must say the same.
    #[test]
    fn built_settings_default_to_what_serve_documents() {
        let parsed = serve_args(&[]).into_settings().expect("valid");
        let built = Settings::new(
            parsed.listen.clone(),
            ClientConfig::new(
                parsed.upstream.base_url.clone(),
                parsed.upstream.credentials.clone(),
            ),
        );
        assert_eq!(built.cache, parsed.cache);
        assert_eq!(built.request_timeout, parsed.request_timeout);
        assert_eq!(built.shutdown_grace, parsed.shutdown_grace);
        assert_eq!(built.events_reconcile, parsed.events_reconcile);
        assert_eq!(built.rate_limit, parsed.rate_limit);
        assert_eq!(built.max_in_flight, parsed.max_in_flight);
        assert_eq!(built.connections, parsed.connections);
        let (b, p) = (&built.upstream, &parsed.upstream);
        assert_eq!(b.calls_per_minute, p.calls_per_minute);
        assert_eq!(b.page_timeout, p.page_timeout);
        assert_eq!(b.list_deadline, p.list_deadline);
        assert_eq!(p.base_url, "https://api.meeting.qq.com");
    }

    #[test]
    fn an_api_base_with_a_path_or_a_user_is_refused_without_repeating_it() {
        let args = serve_args(&["--api-base=https://user:hunter2@api.example.com/v1"]);
        let error = args.into_settings().expect_err("refused").to_string();
        assert!(error.starts_with("WEMEET_API_BASE: "), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn sizes_take_bytes_or_units() {
        assert_eq!(byte_size("256MiB"), Ok(256 * 1024 * 1024));
        assert_eq!(byte_size("1000"), Ok(1000));
        assert!(byte_size("lots").is_err());
    }

    #[test]
    fn durations_use_the_humantime_form() {
        assert_eq!(duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("5m"), Ok(Duration::from_secs(300)));
        assert!(duration("30").is_err());
    }

    #[test]
    fn printing_the_arguments_shows_no_secret() {
        let args = CredentialArgs {
            app_id: Some("1".into()),
            sdk_id: None,
            secret_id: Some("AKIDsecretid".to_owned().into()),
            secret_id_file: None,
            secret_key: Some("the-secret-key".to_owned().into()),
            secret_key_file: None,
        };
        let printed = format!("{args:?}");
        assert!(!printed.contains("the-secret-key") && !printed.contains("AKIDsecretid"));
    }
}
