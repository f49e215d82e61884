//! `energy`: run Energy on this machine. See `energy --help`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "energy", version, about = "Energy: auction orders for European electricity markets, on one machine")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Drive one order of every outcome through the whole choreography in one process, on a
    /// simulated clock, and print the events and a summary. Exits non-zero if an outcome is missing.
    Demo,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Demo => {
            let report = energy_local::demo::run(|line| println!("{line}")).await;
            if report.missing().is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
    }
}
