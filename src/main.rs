//! Wiring only: parse the configuration, start telemetry, run the chosen mode.

use std::process::ExitCode;

use wemeet_gateway::config::{Cli, Mode, one_line_error};
use wemeet_gateway::{modes, telemetry};

/// The system allocator ships; this one is for measuring against it.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse_with_default_mode(std::env::args_os()) {
        Ok(cli) => cli,
        Err(error) => match one_line_error(&error) {
            Some(line) => {
                eprintln!("wemeet-gateway: {line}");
                return ExitCode::from(2);
            }
            None => error.exit(),
        },
    };
    telemetry::init(cli.log_format);
    let result = match cli.mode {
        Mode::Serve(args) => modes::serve(*args).await,
        Mode::Demo(args) => modes::demo(args).await,
        Mode::Simulate(args) => modes::simulate(*args).await,
        Mode::Healthcheck(args) => modes::healthcheck(args).await,
        Mode::Openapi => {
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
