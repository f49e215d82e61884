//! `energy`: run Energy on this machine. See `energy --help`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "energy",
    version,
    about = "Energy: auction orders for European electricity markets, on one machine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Drive one order of every outcome through the whole choreography in one process, on a
    /// simulated clock, and print the events and a summary. Exits non-zero if an outcome is missing.
    Demo {
        /// Also write every event that went over the bus to FILE, one JSON document per line.
        #[arg(long, value_name = "FILE")]
        archive: Option<std::path::PathBuf>,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Demo { archive } => {
            let report = energy_local::demo::run(|line| println!("{line}")).await;
            if let Some(path) = archive {
                let lines: String = report.archive.iter().map(|e| format!("{e}\n")).collect();
                if let Err(e) = std::fs::write(&path, lines) {
                    eprintln!("energy demo: cannot write {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            }
            if report.missing().is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
