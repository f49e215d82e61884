//! `energy`: run Energy on this machine. See `energy --help`.

use std::io::Read;
use std::path::PathBuf;
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
        archive: Option<PathBuf>,
    },
    /// The auction platform's tools.
    Auction {
        #[command(subcommand)]
        command: AuctionCommand,
    },
    /// The simulated auction platform as an HTTP server.
    Platform {
        #[command(subcommand)]
        command: PlatformCommand,
    },
}

#[derive(Subcommand)]
enum PlatformCommand {
    /// Serve the simulated SDAC/IDA platform over its HTTP contract (crates/auction/openapi.yaml)
    /// on 127.0.0.1 until Ctrl-C.
    Serve(energy_local::platform::ServeArgs),
}

#[derive(Subcommand)]
enum AuctionCommand {
    /// Clear step curves with the uniform-price rule and print, per MTU, the clearing price, the
    /// cleared volume and every step's fill as JSON. See the README for the formats.
    Clear {
        /// A JSON file of step curves, or - for standard input.
        input: String,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Demo { archive } => demo(archive).await,
        Command::Auction {
            command: AuctionCommand::Clear { input },
        } => auction_clear(&input),
        Command::Platform {
            command: PlatformCommand::Serve(args),
        } => match energy_local::platform::serve(args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("energy platform serve: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

async fn demo(archive: Option<PathBuf>) -> ExitCode {
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

fn auction_clear(input: &str) -> ExitCode {
    let text = if input == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).map(|_| s)
    } else {
        std::fs::read_to_string(input)
    };
    let text = match text {
        Ok(t) => t,
        Err(e) => {
            eprintln!("energy auction clear: cannot read {input}: {e}");
            return ExitCode::from(2);
        }
    };
    match energy_auction::curves::clear_document(&text) {
        Ok(out) => match serde_json::to_string_pretty(&out) {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("energy auction clear: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("energy auction clear: {input}: {e}");
            ExitCode::from(2)
        }
    }
}
