//! Starting a simulator on port 0 and a client pointed at it.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use wemeet_gateway::server::Server;
use wemeet_gateway::simulator::dataset::Dataset;
use wemeet_gateway::simulator::{Simulator, SimulatorConfig, demo_dataset};
use wemeet_gateway::upstream::{
    ClientConfig, Credentials, Operator, Participant, ParticipantsQuery, RetryPolicy,
    UpstreamClient,
};

pub fn credentials() -> Credentials {
    Credentials {
        app_id: "211000001".into(),
        sdk_id: Some("28370000001".into()),
        secret_id: "AKIDtestSecretId".into(),
        secret_key: SecretString::from("test-secret-key-0123456789"),
    }
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
        base_url: upstream.base_url.clone(),
        credentials: credentials(),
        calls_per_minute: 100_000,
        page_timeout: Duration::from_secs(10),
        list_deadline: Duration::from_secs(600),
        retry: RetryPolicy::default(),
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

/// A plain HTTP client for talking to the servers under test.
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}
