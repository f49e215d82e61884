//! `energy`: run Energy on this machine. See `energy --help`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use energy_local::cli;
use energy_local::db::EventFilter;
use jiff::Timestamp;

#[derive(Parser)]
#[command(
    name = "energy",
    version,
    about = "Energy: auction orders for European electricity markets, on one machine"
)]
struct Cli {
    /// How log lines are written to stderr: `text` for a person, `json` for a log shipper.
    /// The level comes from RUST_LOG (default: warn; `RUST_LOG=info` shows every handler's
    /// decisions).
    #[arg(
        long,
        global = true,
        env = "ENERGY_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Logs to stderr, so stdout stays the command's answer (a listing, JSON).
fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole system on this machine until Ctrl-C.
    ///
    /// The HTTP API on loopback, the bus routed by template.yaml, the scheduler, the sweeper and the simulated auction platform,
    /// on an embedded database under --data-dir on a compressed market clock.
    Up(energy_local::up::UpArgs),
    /// One order of every outcome through `energy up`'s stack, in about ten seconds.
    ///
    /// Over HTTP, on a temporary data dir, with the market clock compressed; prints the events
    /// and a summary. Exits non-zero if an outcome is missing.
    Demo {
        /// Keep the stack's data in this new dir (default: a temporary dir, removed at the end).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Market seconds per real second.
        #[arg(long, default_value_t = 1500)]
        speed: u32,
        /// Also write every event that went over the bus to FILE, one JSON document per line.
        #[arg(long, value_name = "FILE")]
        archive: Option<PathBuf>,
    },
    /// The event archive of a data dir, and event patterns.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// The event schemas (events-schema/, as in the EventBridge schema registry).
    Schemas {
        #[command(subcommand)]
        command: SchemasCommand,
    },
    /// Stored orders of a data dir.
    Orders {
        #[command(subcommand)]
        command: OrdersCommand,
    },
    /// Deliveries that gave up after their retries (the rules' dead-letter queues).
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
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

#[derive(clap::Args)]
struct DataDir {
    /// The data dir of `energy up`.
    #[arg(long, default_value = ".energy", env = "ENERGY_DATA_DIR")]
    data_dir: PathBuf,
}

#[derive(clap::Args)]
struct EventFilterArgs {
    /// Only this order's events.
    #[arg(long = "order", value_name = "RECORD_ID")]
    order: Option<String>,
    /// Only events of this detail-type.
    #[arg(long = "type", value_name = "DETAIL_TYPE")]
    detail_type: Option<String>,
    /// Whole events as JSON lines instead of one summary line each.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    dir: DataDir,
}

#[derive(Subcommand)]
enum EventsCommand {
    /// Every archived event, oldest first.
    List(EventFilterArgs),
    /// Like list, then follows new events until Ctrl-C.
    Tail(EventFilterArgs),
    /// Puts archived events whose time (market clock) is at or after --since back on the bus,
    /// routed by the current rules, marked with a replay-name.
    Replay {
        /// RFC 3339 instant, e.g. 2026-11-27T12:00:00Z.
        #[arg(long)]
        since: Timestamp,
        #[arg(long = "type", value_name = "DETAIL_TYPE")]
        detail_type: Option<String>,
        #[arg(long = "order", value_name = "RECORD_ID")]
        order: Option<String>,
        /// The consumers file whose rules also apply [default: energy.consumers.yaml if present].
        #[arg(long, value_name = "FILE")]
        consumers: Option<PathBuf>,
        #[command(flatten)]
        dir: DataDir,
    },
    /// Whether an event matches a pattern, like `aws events test-event-pattern`. Each argument
    /// is inline JSON, file://PATH, @PATH or - (standard input).
    TestPattern {
        #[arg(long)]
        pattern: String,
        #[arg(long)]
        event: String,
    },
}

#[derive(Subcommand)]
enum SchemasCommand {
    /// The schemas' names.
    List,
    /// One schema (draft-04 JSON Schema of the whole event).
    Show { name: String },
    /// Checks an event (by its detail-type) or a POST /orders body against its schema.
    Validate { file: PathBuf },
}

#[derive(Subcommand)]
enum OrdersCommand {
    /// The stored record of one order and the events about it.
    Show {
        record_id: String,
        #[command(flatten)]
        dir: DataDir,
    },
}

#[derive(Subcommand)]
enum DlqCommand {
    /// The dead letters: rule, target, attempts, last error, event.
    List {
        /// One JSON document per line.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        dir: DataDir,
    },
    /// Queues dead letters (all, or the given ids) for delivery again, with fresh retries; a
    /// running `energy up` delivers them within a second, otherwise the next start does.
    Redrive {
        ids: Vec<i64>,
        #[command(flatten)]
        dir: DataDir,
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

/// Prints a line on stdout; see [`out`].
macro_rules! outln {
    () => { out(format_args!("\n")) };
    ($($t:tt)*) => { out(format_args!("{}\n", format_args!($($t)*))) };
}

/// Writes to stdout. A reader that went away (`energy events list | head`) ends the command
/// quietly, as it ends `ls`, instead of a panic on the broken pipe.
fn out(args: std::fmt::Arguments) {
    use std::io::Write;
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        stdout_failed(e);
    }
}

/// Widens standard output to [`STDOUT_PIPE_BYTES`] when it is a pipe, so that a result of
/// many MiB goes into it a whole buffer at a time: with Linux's 64 KiB pipe, the writing thread
/// waited on a reader that reads 8 KiB at a time (as `std::io::copy` does) every few KiB, and
/// the two of them switched places some 3,000 times for 1M steps' results (900 times widened,
/// and the whole command took about a seventh less time).
#[cfg(target_os = "linux")]
fn widen_stdout_pipe() {
    use std::os::fd::AsFd;
    let stdout = std::io::stdout();
    // Not a pipe (a file, a terminal) or a size refused: it stays as it was.
    if let Err(e) = rustix::pipe::fcntl_setpipe_size(stdout.as_fd(), STDOUT_PIPE_BYTES) {
        tracing::debug!(error = %e, "stdout not widened");
    }
}

#[cfg(not(target_os = "linux"))]
fn widen_stdout_pipe() {}

/// What any process may widen a pipe to (`/proc/sys/fs/pipe-max-size` by default).
#[cfg(target_os = "linux")]
const STDOUT_PIPE_BYTES: usize = 1 << 20;

/// Ends the command on a failed write to stdout: quietly when the reader went away.
fn stdout_failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("energy: cannot write to stdout: {e}");
    std::process::exit(1);
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match cli.command {
        Command::Up(args) => report("energy up", energy_local::up::run(args).await),
        Command::Events { command } => events(command).await,
        Command::Schemas { command } => schemas(command),
        Command::Orders {
            command: OrdersCommand::Show { record_id, dir },
        } => report(
            "energy orders show",
            energy_local::cli::order(&dir.data_dir, &record_id).map(|s| out(format_args!("{s}"))),
        ),
        Command::Dlq { command } => dlq(command),
        Command::Demo {
            archive,
            data_dir,
            speed,
        } => demo(archive, energy_local::demo::DemoOptions { data_dir, speed }).await,
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

fn report(what: &str, r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{what}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn filter(order: Option<String>, detail_type: Option<String>) -> EventFilter {
    EventFilter {
        record_id: order,
        detail_type,
        ..Default::default()
    }
}

async fn events(command: EventsCommand) -> ExitCode {
    let print = |l: &str| outln!("{l}");
    match command {
        EventsCommand::List(a) => report(
            "energy events list",
            cli::events(
                &a.dir.data_dir,
                filter(a.order, a.detail_type),
                false,
                a.json,
                print,
            )
            .await,
        ),
        EventsCommand::Tail(a) => {
            let follow = cli::events(
                &a.dir.data_dir,
                filter(a.order, a.detail_type),
                true,
                a.json,
                print,
            );
            tokio::select! {
                r = follow => report("energy events tail", r),
                _ = tokio::signal::ctrl_c() => ExitCode::SUCCESS,
            }
        }
        EventsCommand::Replay {
            since,
            detail_type,
            order,
            consumers,
            dir,
        } => report(
            "energy events replay",
            energy_local::up::load_topology(None, consumers.as_deref()).and_then(
                |(topology, _)| {
                    let mut f = filter(order, detail_type);
                    f.since_time = Some(since.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
                    let (name, events, deliveries) = cli::replay(&dir.data_dir, &topology, f)?;
                    outln!(
                        "{name}: {events} events back on the bus, {deliveries} deliveries queued"
                    );
                    Ok(())
                },
            ),
        ),
        EventsCommand::TestPattern { pattern, event } => {
            match cli::test_pattern(&pattern, &event) {
                Ok(result) => {
                    outln!("{}", serde_json::json!({ "Result": result }));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("energy events test-pattern: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

fn schemas(command: SchemasCommand) -> ExitCode {
    match command {
        SchemasCommand::List => {
            for (name, _) in cli::SCHEMAS {
                outln!("{name}");
            }
            ExitCode::SUCCESS
        }
        SchemasCommand::Show { name } => match cli::schema(&name) {
            Ok(s) => {
                print!("{s}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("energy schemas show: {e}");
                ExitCode::from(2)
            }
        },
        SchemasCommand::Validate { file } => {
            let text = match std::fs::read_to_string(&file) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!(
                        "energy schemas validate: cannot read {}: {e}",
                        file.display()
                    );
                    return ExitCode::from(2);
                }
            };
            match cli::validate(&text) {
                Ok((name, errors)) if errors.is_empty() => {
                    outln!("{}: valid {name}", file.display());
                    ExitCode::SUCCESS
                }
                Ok((name, errors)) => {
                    outln!("{}: not a valid {name}:", file.display());
                    for e in errors {
                        outln!("  {e}");
                    }
                    ExitCode::FAILURE
                }
                Err(e) => {
                    eprintln!("energy schemas validate: {}: {e:#}", file.display());
                    ExitCode::from(2)
                }
            }
        }
    }
}

fn dlq(command: DlqCommand) -> ExitCode {
    match command {
        DlqCommand::List { json, dir } => report(
            "energy dlq list",
            cli::dlq_list(&dir.data_dir, json).map(|lines| {
                if lines.is_empty() && !json {
                    outln!("no dead letters");
                }
                for l in lines {
                    outln!("{l}");
                }
            }),
        ),
        DlqCommand::Redrive { ids, dir } => report(
            "energy dlq redrive",
            cli::dlq_redrive(&dir.data_dir, &ids).map(|n| outln!("{n} dead letters queued again")),
        ),
    }
}

async fn demo(archive: Option<PathBuf>, options: energy_local::demo::DemoOptions) -> ExitCode {
    let report = match energy_local::demo::run(options, |line| outln!("{line}")).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("energy demo: {e:#}");
            return ExitCode::FAILURE;
        }
    };
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

/// Reads the document into compact curves: a file a window at a time (a large one by two
/// threads), standard input (or a pipe given as a file) whole, let go before the steps are
/// checked. Then clears MTU
/// after MTU and writes each result as it is produced: memory holds the steps and one MTU's
/// clearing, and while reading the text of standard input.
fn auction_clear(input: &str) -> ExitCode {
    use energy_auction::curves::{Curves, ReadError};
    use std::io::Read;
    let curves = if input == "-" {
        let mut text = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut text)
            .map_err(ReadError::Io)
            .and_then(|_| Curves::from_bytes(text).map_err(ReadError::Input))
    } else {
        let path = std::path::Path::new(input);
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_file() => Curves::from_path(path),
            // A pipe, say: read whole.
            Ok(_) => std::fs::read(path)
                .map_err(ReadError::Io)
                .and_then(|text| Curves::from_bytes(text).map_err(ReadError::Input)),
            Err(e) => Err(ReadError::Io(e)),
        }
    };
    let curves = match curves {
        Ok(curves) => curves,
        Err(ReadError::Io(e)) => {
            eprintln!("energy auction clear: cannot read {input}: {e}");
            return ExitCode::from(2);
        }
        Err(ReadError::Input(e)) => {
            eprintln!("energy auction clear: {input}: {e}");
            return ExitCode::from(2);
        }
    };
    // The results come in large pieces, written from a thread of their own.
    widen_stdout_pipe();
    match curves.write_results(std::io::stdout()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => stdout_failed(e),
    }
}
