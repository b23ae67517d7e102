//! Starting a simulator on port 0 and a client pointed at it.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use wemeet_gateway::app::Gateway;
use wemeet_gateway::config::Settings;
use wemeet_gateway::server::Server;
use wemeet_gateway::simulator::dataset::Dataset;
use wemeet_gateway::simulator::{Simulator, SimulatorConfig, demo_dataset};
use wemeet_gateway::upstream::{
    ClientConfig, Credentials, Operator, Participant, ParticipantsQuery, UpstreamClient,
};

pub const APP_ID: &str = "211000001";
pub const SDK_ID: &str = "28370000001";
pub const SECRET_ID: &str = "AKIDtestSecretId";
pub const SECRET_KEY: &str = "test-secret-key-0123456789";

/// The credentials the test simulators accept.
pub fn credentials() -> Credentials {
    credentials_of(APP_ID, Some(SDK_ID), SECRET_ID, SECRET_KEY)
}

/// Credentials made of these values (to make wrong ones).
pub fn credentials_of(
    app_id: &str,
    sdk_id: Option<&str>,
    secret_id: &str,
    secret_key: &str,
) -> Credentials {
    Credentials::new(
        app_id,
        sdk_id.map(str::to_owned),
        secret_id,
        SecretString::from(secret_key),
    )
    .unwrap()
}

/// A running simulator and where to reach it.
pub struct TestUpstream {
    pub simulator: Simulator,
    pub base_url: String,
}

pub async fn start_simulator(calls_per_minute: u32) -> TestUpstream {
    start_simulator_with(demo_dataset(), calls_per_minute).await
}

pub async fn start_simulator_with(dataset: Arc<Dataset>, calls_per_minute: u32) -> TestUpstream {
    let simulator = Simulator::new(SimulatorConfig {
        credentials: credentials(),
        calls_per_minute,
        calls_per_day: 200_000,
        dataset,
    });
    let server = Server::bind("127.0.0.1:0", simulator.router())
        .await
        .expect("bind");
    let addr = server.spawn();
    TestUpstream {
        simulator,
        base_url: format!("http://{addr}"),
    }
}

pub fn client_config(upstream: &TestUpstream) -> ClientConfig {
    ClientConfig {
        calls_per_minute: 100_000,
        list_deadline: Duration::from_secs(600),
        ..ClientConfig::new(upstream.base_url.clone(), credentials())
    }
}

pub fn client(upstream: &TestUpstream) -> UpstreamClient {
    UpstreamClient::new(client_config(upstream)).expect("client")
}

pub fn query(meeting_id: &str) -> ParticipantsQuery {
    ParticipantsQuery::new(meeting_id, Operator::user_id("owner1").unwrap()).unwrap()
}

/// The records the simulator holds for a meeting, decoded as the client decodes them.
pub fn stored_records(
    simulator: &Simulator,
    meeting_id: &str,
    sub_meeting_id: Option<&str>,
) -> Vec<Participant> {
    let meeting = &simulator.dataset().meetings[meeting_id];
    meeting
        .records(sub_meeting_id)
        .unwrap()
        .iter()
        .map(|r| serde_json::from_str(r.json.get()).unwrap())
        .collect()
}

/// GET `url` and read its JSON body.
pub async fn get_json<T: serde::de::DeserializeOwned>(http: &reqwest::Client, url: &str) -> T {
    http.get(url)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("a JSON body")
}

/// A plain HTTP client for talking to the servers under test. It drops a pooled connection
/// idle for 5 s, before the servers close one idle for their header timeout (10 s): with tokio's
/// clock paused, both jump ahead together, and a connection the server had just closed would
/// otherwise be reused.
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(5))
        .build()
        .expect("a client")
}

/// A running gateway pointed at a simulator, and a key it accepts.
pub struct TestGateway {
    pub upstream: TestUpstream,
    pub base_url: String,
    pub api_key: String,
    pub http: reqwest::Client,
}

pub const API_KEY: &str = "test-api-key-7c1d3f";

pub async fn start_gateway() -> TestGateway {
    start_gateway_with(start_simulator(100_000).await, |_| {}).await
}

/// A gateway on port 0 pointed at `upstream`, built as `serve` builds it, from settings that
/// `adjust` may change first.
pub async fn start_gateway_with(
    upstream: TestUpstream,
    adjust: impl FnOnce(&mut Settings),
) -> TestGateway {
    use sha2::Digest;
    let mut settings = Settings::new("127.0.0.1:0", client_config(&upstream));
    settings.default_operator = Some(Operator::user_id("owner1").unwrap());
    settings.api_key_digests = vec![sha2::Sha256::digest(API_KEY.as_bytes()).into()];
    adjust(&mut settings);
    let addr = Gateway::build(settings).await.expect("gateway").spawn();
    TestGateway {
        upstream,
        base_url: format!("http://{addr}"),
        api_key: API_KEY.into(),
        http: http_client(),
    }
}

impl TestGateway {
    /// GET with the test key.
    pub async fn get(&self, path_and_query: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path_and_query}", self.base_url))
            .bearer_auth(&self.api_key)
            .send()
            .await
            .expect("request")
    }

    /// GET with the test key and one more request header.
    pub async fn get_with(
        &self,
        path_and_query: &str,
        name: &str,
        value: &str,
    ) -> reqwest::Response {
        self.http
            .get(format!("{}{path_and_query}", self.base_url))
            .bearer_auth(&self.api_key)
            .header(name, value)
            .send()
            .await
            .expect("request")
    }

    /// DELETE with the test key.
    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.http
            .delete(format!("{}{path}", self.base_url))
            .bearer_auth(&self.api_key)
            .send()
            .await
            .expect("request")
    }

    pub fn upstream_calls(&self) -> u64 {
        self.upstream.simulator.counters().calls
    }

    /// GET without any key, as anyone can.
    pub async fn get_without_key(&self, path_and_query: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path_and_query}", self.base_url))
            .send()
            .await
            .expect("request")
    }

    /// The Prometheus text from `/metrics`.
    pub async fn metrics(&self) -> String {
        let response = self.get_without_key("/metrics").await;
        response.text().await.expect("metrics text")
    }
}

/// A problem+json answer: status, body, and that the content type says so.
pub async fn problem(response: reqwest::Response) -> (u16, serde_json::Value) {
    let status = response.status().as_u16();
    let content_type = response.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/problem+json", "status {status}");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert!(
        body["type"]
            .as_str()
            .unwrap()
            .starts_with("urn:wemeet-gateway:problem:")
    );
    assert!(body["title"].is_string() && body["detail"].is_string());
    (status, body)
}
