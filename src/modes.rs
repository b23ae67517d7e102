//! The binary's modes, each a function from its parsed arguments to a running service.

use std::sync::Arc;

use crate::config::{ConfigError, SimulateArgs, demo_credentials};
use crate::server::{BindError, Server, shutdown_signal};
use crate::simulator::dataset::{Dataset, DatasetError};
use crate::simulator::{Simulator, SimulatorConfig, demo_dataset};

/// Why a mode could not start or stopped with an error; the message is for the operator.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("server error: {0}")]
    Serve(#[from] std::io::Error),
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
        use secrecy::ExposeSecret;
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
