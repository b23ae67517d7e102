//! Wiring only: parse the configuration, start telemetry, run the chosen mode.

use std::process::ExitCode;

use clap::Parser;
use wemeet_gateway::config::{Cli, Mode};
use wemeet_gateway::{modes, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    let result = match cli.mode {
        None => modes::serve(*cli.serve).await,
        Some(Mode::Serve(args)) => modes::serve(*args).await,
        Some(Mode::Demo(args)) => modes::demo(args).await,
        Some(Mode::Simulate(args)) => modes::simulate(args).await,
        Some(Mode::Healthcheck(args)) => modes::healthcheck(args).await,
        Some(Mode::Openapi) => {
            print!("{}", wemeet_gateway::api::openapi_json());
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("wemeet-gateway: {error}");
            ExitCode::FAILURE
        }
    }
}
