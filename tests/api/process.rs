//! The real binary as an operator runs it: configuration errors, logs, signals.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::*;

const BINARY: &str = env!("CARGO_BIN_EXE_wemeet-gateway");
const SECRET_KEY: &str = "process-test-secret-key-5a9e";
const WRONG_SECRET_KEY: &str = "process-test-wrong-key-0b2c";

fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(BINARY);
    command.args(args).env_clear().envs(env.iter().copied());
    command
}

/// Starts a process and reads its output lines until `find` recognises one; gives up after 10 s.
fn start_until(
    mut command: Command,
    find: impl Fn(&str) -> Option<String>,
) -> (Child, String, std::sync::mpsc::Receiver<String>) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let (tx, rx) = std::sync::mpsc::channel();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = String::new();
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        seen.push_str(&line);
        seen.push('\n');
        if let Some(found) = find(&line) {
            return (child, found, rx);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the process did not start; it printed:\n{seen}");
}

const CREDENTIALS: [(&str, &str); 3] = [
    ("WEMEET_APP_ID", "211000009"),
    ("WEMEET_SECRET_ID", "AKIDprocessTest"),
    ("WEMEET_SECRET_KEY", SECRET_KEY),
];

fn start_simulator_process() -> (Child, String) {
    let command = command(&["simulate", "--listen", "127.0.0.1:0"], &CREDENTIALS);
    let (child, base, _) = start_until(command, simulator_address);
    (child, base)
}

/// The simulator's address, from the line it prints when it listens.
fn simulator_address(line: &str) -> Option<String> {
    line.strip_prefix("simulated Tencent Meeting API on ")
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
}

fn api_key_digest() -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(API_KEY.as_bytes()))
}

/// Starts `serve` against `upstream` with JSON debug logs; returns the process, its address and
/// its output.
fn start_gateway_process(
    upstream: &str,
    secret_key: &str,
    extra: &[(&str, &str)],
) -> (Child, String, std::sync::mpsc::Receiver<String>) {
    let digest = api_key_digest();
    let mut env = vec![
        ("WEMEET_API_BASE", upstream),
        ("WEMEET_APP_ID", CREDENTIALS[0].1),
        ("WEMEET_SECRET_ID", CREDENTIALS[1].1),
        ("WEMEET_SECRET_KEY", secret_key),
        ("WEMEET_OPERATOR_USERID", "owner1"),
        ("GATEWAY_LISTEN", "127.0.0.1:0"),
        ("GATEWAY_API_KEYS", &digest),
        ("GATEWAY_LOG_FORMAT", "json"),
        ("GATEWAY_SHUTDOWN_GRACE", "10s"),
        ("RUST_LOG", "trace"),
    ];
    env.extend_from_slice(extra);
    start_until(command(&["serve"], &env), |line| {
        let value: serde_json::Value = serde_json::from_str(line).ok()?;
        (value["message"] == "gateway listening")
            .then(|| format!("http://{}", value["address"].as_str().unwrap()))
    })
}

fn drain(output: &std::sync::mpsc::Receiver<String>) -> String {
    let mut all = String::new();
    while let Ok(line) = output.recv_timeout(Duration::from_millis(300)) {
        all.push_str(&line);
        all.push('\n');
    }
    all
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// An 88-character base64 value: what every X-TC-Signature looks like.
fn contains_signature(text: &str) -> bool {
    text.as_bytes().windows(88).any(|w| {
        w[86..] == *b"=="
            && w[..86]
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
    })
}

#[tokio::test]
async fn logs_hold_no_secret_key_signature_or_api_key() {
    let (simulator, upstream) = start_simulator_process();
    let (good, good_base, good_log) = start_gateway_process(&upstream, SECRET_KEY, &[]);
    let (bad, bad_base, bad_log) = start_gateway_process(&upstream, WRONG_SECRET_KEY, &[]);
    let http = http_client();
    let path = "/meetings/100000000000000001/participants";
    let get = || {
        http.get(format!("{good_base}{path}"))
            .bearer_auth(API_KEY)
            .send()
    };
    let ok = get().await.unwrap();
    assert_eq!(ok.status(), 200);
    // A hit, while requests are logged: it goes through the logging stack too.
    let hit = get().await.unwrap();
    let status = hit.headers()["cache-status"].to_str().unwrap();
    assert!(status.starts_with("wemeet-gateway; hit;"), "{status}");
    let refused = http
        .get(format!("{bad_base}{path}"))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 502);
    let refused_body = refused.text().await.unwrap();
    stop(good);
    stop(bad);
    stop(simulator);

    let good_logs = drain(&good_log);
    assert_eq!(
        good_logs.matches("finished processing request").count(),
        2,
        "both requests are logged:\n{good_logs}"
    );
    let logs = good_logs + &drain(&bad_log);
    assert!(
        logs.contains("upstream_page"),
        "page spans are logged:\n{logs}"
    );
    assert!(
        logs.contains("WEMEET_SECRET_KEY does not belong to WEMEET_SECRET_ID"),
        "the misconfiguration is named:\n{logs}"
    );
    for text in [&logs, &refused_body] {
        assert!(!text.contains(SECRET_KEY) && !text.contains(WRONG_SECRET_KEY));
        assert!(!text.contains(API_KEY));
        assert!(!contains_signature(text), "a signature leaked:\n{text}");
    }
}

#[tokio::test]
async fn the_simulator_process_changes_its_live_meeting_when_given_a_webhook_url() {
    let mut env = CREDENTIALS.to_vec();
    env.push(("WEMEET_WEBHOOK_TOKEN", "process-webhook-token"));
    let command = command(
        &[
            "simulate",
            "--listen",
            "127.0.0.1:0",
            // Nobody listens there: the changes happen all the same, the deliveries are retried.
            "--webhook-url",
            "http://127.0.0.1:9/webhooks/wemeet",
            "--events-every",
            "200ms",
        ],
        &env,
    );
    let (simulator, base, _log) = start_until(command, simulator_address);
    let http = http_client();
    let mut joined = 0;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let records: Vec<serde_json::Value> = crate::helpers::get_json(
            &http,
            &format!("{base}/_simulator/meetings/100000000000000001/records"),
        )
        .await;
        joined = records
            .iter()
            .filter(|r| r["uuid"].as_str().is_some_and(|u| u.starts_with("WM-sim-")))
            .count();
        if joined > 0 {
            break;
        }
    }
    stop(simulator);
    assert!(joined > 0, "someone joined the live meeting");
}

/// Tells the simulator process at `upstream` to inject `fault`.
async fn inject_fault(http: &reqwest::Client, upstream: &str, fault: serde_json::Value) {
    let injected = http
        .post(format!("{upstream}/_simulator/faults"))
        .json(&fault)
        .send()
        .await
        .unwrap();
    assert_eq!(injected.status(), 204);
}

const REDIS_PASSWORD: &str = "process-test-redis-password-4e1f";

#[tokio::test]
async fn the_redis_password_reaches_no_log_and_no_answer() {
    let Some(mut redis) =
        crate::redis_server::RedisServer::start_with_password(Some(REDIS_PASSWORD))
    else {
        return;
    };
    let (upstream, upstream_base) = start_simulator_process();
    let url = redis.url();
    let (gateway, base, log) =
        start_gateway_process(&upstream_base, SECRET_KEY, &[("GATEWAY_REDIS_URL", &url)]);
    let http = crate::helpers::http_client();
    let ready = |http: reqwest::Client, base: String| async move {
        crate::helpers::get_json::<serde_json::Value>(&http, &format!("{base}/readyz")).await
    };
    // The password opened Redis: shared mode.
    assert_eq!(ready(http.clone(), base.clone()).await["redis"], "shared");
    let list = format!("{base}/meetings/144115214488302892/participants");
    let answer = http.get(&list).bearer_auth(API_KEY).send().await.unwrap();
    assert_eq!(answer.status(), 200);

    redis.stop();
    let cold = format!("{base}/meetings/100000000000000001/participants");
    let answer = http.get(&cold).bearer_auth(API_KEY).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let status = ready(http.clone(), base.clone()).await;
    assert_eq!(status["redis"], "degraded");
    let metrics = http.get(format!("{base}/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();

    stop(gateway);
    stop(upstream);
    let logs = drain(&log);
    assert!(logs.contains("local mode"), "{logs}");
    for text in [&logs, &metrics, &status.to_string()] {
        assert!(!text.contains(REDIS_PASSWORD));
    }
}

#[tokio::test]
async fn a_replica_takes_over_the_fetch_of_one_that_died_holding_its_lock() {
    let Some(redis) = crate::redis_server::RedisServer::start() else {
        return;
    };
    let (simulator, upstream) = start_simulator_process();
    let http = http_client();
    // Each page of the live meeting's list takes 0.4 s: 13 pages, about 5 s a fetch.
    let fault = serde_json::json!({"meeting_id": "100000000000000001", "latency_ms": 400});
    inject_fault(&http, &upstream, fault).await;
    let url = redis.url();
    let settings = [
        ("GATEWAY_REDIS_URL", url.as_str()),
        ("GATEWAY_FETCH_WAIT", "1s"),
    ];
    // The logs are kept open: a process whose output is closed dies at its next line.
    let (holder, holder_base, _holder_log) =
        start_gateway_process(&upstream, SECRET_KEY, &settings);
    let (other, other_base, _other_log) = start_gateway_process(&upstream, SECRET_KEY, &settings);
    let list = "/meetings/100000000000000001/participants";
    let get = |base: &str| {
        http.get(format!("{base}{list}"))
            .bearer_auth(API_KEY)
            .send()
    };
    // The holder takes the lock and starts fetching; it dies a few pages in, once it has shared
    // its progress (every half second).
    assert_eq!(get(&holder_base).await.unwrap().status(), 202);
    tokio::time::sleep(Duration::from_millis(600)).await;
    stop(holder);
    let died = Instant::now();

    // Until the lock expires the other replica answers 202 with the progress the holder shared
    // before it died.
    let pending: serde_json::Value = {
        let response = get(&other_base).await.unwrap();
        assert_eq!(response.status(), 202);
        response.json().await.unwrap()
    };
    let records = pending["records_fetched"].as_u64().unwrap();
    assert!((100..1234).contains(&records), "{pending}");
    let mut answer = None;
    for _ in 0..60 {
        let response = get(&other_base).await.unwrap();
        if response.status() != 202 {
            answer = Some(response);
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let answer = answer.expect("the other replica answers within 30 s");
    assert_eq!(answer.status(), 200);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["participants"].as_array().unwrap().len(), 1234);
    // Within the lock's expiry (10 s) and one fetch (about 5 s), with room for a slow machine.
    assert!(
        died.elapsed() < Duration::from_secs(25),
        "{:?}",
        died.elapsed()
    );
    let metrics = http
        .get(format!("{other_base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("gateway_shared_lock_events_total{event=\"takeover\"} 1"),
        "{metrics}"
    );
    stop(other);
    stop(simulator);
}

#[tokio::test]
async fn sigterm_lets_a_slow_request_finish_then_exits_cleanly() {
    let (simulator, upstream) = start_simulator_process();
    let http = http_client();
    let fault = serde_json::json!({"latency_ms": 1500, "times": 1});
    inject_fault(&http, &upstream, fault).await;
    let (mut gateway, base, _log) = start_gateway_process(&upstream, SECRET_KEY, &[]);

    let request = tokio::spawn({
        let http = http.clone();
        async move {
            http.get(format!("{base}/meetings/144115214488302892/participants"))
                .bearer_auth(API_KEY)
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killed = Command::new("kill")
        .args(["-TERM", &gateway.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert_eq!(
        request.await.unwrap(),
        200,
        "the in-flight request completed"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = gateway.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the gateway did not exit");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    stop(simulator);
}

fn run_to_exit(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let output = command(args, env).output().unwrap();
    let text = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code().unwrap_or(-1), text)
}

#[test]
fn serve_refuses_to_start_without_keys_or_with_bad_values_naming_the_variable() {
    let base = [
        ("WEMEET_APP_ID", "1"),
        ("WEMEET_SECRET_ID", "AKID"),
        ("WEMEET_SECRET_KEY", SECRET_KEY),
        ("GATEWAY_LISTEN", "127.0.0.1:0"),
    ];
    let (code, stderr) = run_to_exit(&["serve"], &base);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("GATEWAY_API_KEYS") && stderr.contains("GATEWAY_ALLOW_ANONYMOUS"),
        "{stderr}"
    );

    let mut env = base.to_vec();
    env.push(("GATEWAY_API_KEYS", "my-plain-key"));
    let (code, stderr) = run_to_exit(&["serve"], &env);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("GATEWAY_API_KEYS") && !stderr.contains("my-plain-key"),
        "{stderr}"
    );

    // A bad value is one line naming the variable, whether or not `serve` is spelled out.
    let bad_values = [
        ("WEMEET_CALLS_PER_MINUTE", "lots"),
        ("GATEWAY_CACHE_MAX_BYTES", "lots"),
        ("WEMEET_PAGE_TIMEOUT", "0s"),
        ("GATEWAY_CACHE_STALE_IF_ERROR", "300000000000years"),
        ("GATEWAY_ALLOW_ANONYMOUS", "yes"),
    ];
    for (variable, value) in bad_values {
        for args in [&["serve"][..], &[]] {
            let mut env = base.to_vec();
            env.push((variable, value));
            let (code, stderr) = run_to_exit(args, &env);
            assert_eq!(code, 2, "{variable}={value}: {stderr}");
            assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
            assert!(
                stderr.starts_with(&format!("wemeet-gateway: {variable}: invalid value")),
                "{stderr}"
            );
        }
    }

    let digest = "ab".repeat(32);
    let mut env = base.to_vec();
    env.push(("GATEWAY_API_KEYS", &digest));
    env.push(("GATEWAY_ALLOW_ANONYMOUS", "true"));
    let (code, stderr) = run_to_exit(&["serve"], &env);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("GATEWAY_ALLOW_ANONYMOUS") && stderr.contains("without a key"),
        "keys and anonymous access together: {stderr}"
    );

    let mut env = base.to_vec();
    env.push(("GATEWAY_ALLOW_ANONYMOUS", "true"));
    env.push(("GATEWAY_CORS_ORIGINS", "https://App.Example.com"));
    let (code, stderr) = run_to_exit(&["serve"], &env);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("GATEWAY_CORS_ORIGINS")
            && stderr.contains("did you mean https://app.example.com?"),
        "{stderr}"
    );

    // A Redis URL that cannot be used is named, never repeated: it may carry a password.
    for url in [
        "http://user:hunter2-in-url@cache:6379",
        "redis://:hunter2-in-url@cache:notaport",
    ] {
        let mut env = base.to_vec();
        env.push(("GATEWAY_ALLOW_ANONYMOUS", "true"));
        env.push(("GATEWAY_REDIS_URL", url));
        let (code, stderr) = run_to_exit(&["serve"], &env);
        assert_eq!(code, 1, "{stderr}");
        assert!(stderr.contains("GATEWAY_REDIS_URL"), "{stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }

    let (code, stderr) = run_to_exit(&["serve"], &[("GATEWAY_ALLOW_ANONYMOUS", "true")]);
    assert_eq!(code, 1);
    assert!(stderr.contains("WEMEET_APP_ID"), "{stderr}");
    assert!(!stderr.contains(SECRET_KEY));
}

/// The health check reads only its own settings: a bad `serve` variable in the container's
/// environment must not make it fail to parse.
#[test]
fn healthcheck_ignores_the_other_modes_settings() {
    let (code, stderr) = run_to_exit(
        &["healthcheck", "--timeout", "1s"],
        &[
            ("GATEWAY_LISTEN", "127.0.0.1:1"),
            ("GATEWAY_CACHE_MAX_BYTES", "lots"),
        ],
    );
    assert_eq!(code, 1, "nothing listens on port 1: {stderr}");
    assert!(stderr.contains("unhealthy"), "{stderr}");
}

#[test]
fn a_port_in_use_is_a_one_line_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let (code, stderr) = run_to_exit(&["demo", "--listen", &address], &[]);
    assert_eq!(code, 1);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("cannot listen on") && stderr.contains(&address),
        "{stderr}"
    );
}

#[test]
fn help_documents_every_variable_and_shows_no_secret_value() {
    let output = command(
        &["serve", "--help"],
        &[
            ("WEMEET_SECRET_KEY", SECRET_KEY),
            ("GATEWAY_REDIS_URL", "redis://:hunter2-in-url@cache"),
        ],
    )
    .output()
    .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    for variable in [
        "WEMEET_API_BASE",
        "WEMEET_APP_ID",
        "WEMEET_SDK_ID",
        "WEMEET_SECRET_ID",
        "WEMEET_SECRET_ID_FILE",
        "WEMEET_SECRET_KEY",
        "WEMEET_SECRET_KEY_FILE",
        "WEMEET_OPERATOR_USERID",
        "WEMEET_CALLS_PER_MINUTE",
        "GATEWAY_LISTEN",
        "GATEWAY_API_KEYS",
        "GATEWAY_API_KEYS_FILE",
        "GATEWAY_ALLOW_ANONYMOUS",
        "GATEWAY_CORS_ORIGINS",
        "GATEWAY_REDIS_URL",
        "GATEWAY_REDIS_URL_FILE",
        "GATEWAY_REDIS_PREFIX",
        "GATEWAY_REDIS_FALLBACK_CALLS_PER_MINUTE",
        "WEMEET_CALLS_PER_DAY",
    ] {
        assert!(help.contains(variable), "{variable} missing from --help");
    }
    assert!(!help.contains(SECRET_KEY) && !help.contains("hunter2"));
}

/// The container's health check: `healthcheck` exits 0 when the server on GATEWAY_LISTEN answers
/// `/healthz`, and 1 with a reason when nothing does.
#[test]
fn healthcheck_reports_whether_the_server_answers() {
    let (mut simulator, base) = start_simulator_process();
    let addr = base.trim_start_matches("http://");
    let port = addr.rsplit(':').next().unwrap();
    let healthy = command(
        &["healthcheck"],
        &[("GATEWAY_LISTEN", &format!("0.0.0.0:{port}"))],
    )
    .output()
    .unwrap();
    assert!(healthy.status.success(), "{healthy:?}");
    simulator.kill().unwrap();
    simulator.wait().unwrap();

    let down = command(&["healthcheck", "--listen", addr, "--timeout", "2s"], &[])
        .output()
        .unwrap();
    assert_eq!(down.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&down.stderr);
    assert!(
        stderr.contains("unhealthy") && stderr.contains(addr),
        "{stderr}"
    );
}

#[tokio::test]
async fn sigterm_exits_within_the_header_timeout_however_many_slow_or_idle_connections_are_open() {
    use tokio::io::AsyncWriteExt as _;
    let (simulator, upstream) = start_simulator_process();
    let (mut gateway, base, _log) = start_gateway_process(
        &upstream,
        SECRET_KEY,
        &[
            ("GATEWAY_SHUTDOWN_GRACE", "30s"),
            ("GATEWAY_HEADER_TIMEOUT", "3s"),
        ],
    );
    let addr = base.trim_start_matches("http://").to_owned();
    // Half-sent requests, and keep-alive connections left idle after an answer.
    let mut open = Vec::new();
    for _ in 0..200 {
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        open.push(stream);
    }
    let http = http_client();
    for _ in 0..20 {
        let status = http
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200);
    }
    let signalled = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &gateway.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = loop {
        if let Some(status) = gateway.try_wait().unwrap() {
            break status;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(6),
            "still draining after twice the header timeout (the grace is 30 s)"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    drop(open);
    stop(simulator);
}
