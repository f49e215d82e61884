//! Clearing one MTU of 1k, 100k and 1M steps (half buys, half sells), release build.
//!
//! `cargo bench -p energy-auction --bench clearing` prints:
//! - per size, the median and best of several runs of `clear()` (the engine), and the median of
//!   the document path in process (`Curves::from_slice` over the JSON, `write_results` into a
//!   sink) with its ratio to the engine's median;
//! - for 1M steps, the whole `energy auction clear FILE` command on the same steps written to a
//!   temporary file, once in id order and once shuffled: the median wall time of several runs
//!   with its standard output going to `/dev/null` (as hyperfine times a command), the median
//!   with its output read from a pipe (1 MiB at a time, so the reading takes no more of a
//!   processor than it must), each with its ratio to the engine's median on those steps, and
//!   the median peak memory of the piped runs (`/usr/bin/time -f %M`, where there is one) and
//!   its ratio to the file's size. The two kinds of run alternate, after one run not counted.
//!   The command is `$ENERGY_BIN`, or the release `energy` beside this bench (`cargo build
//!   --release -p energy-local --bin energy` first; the case is skipped without one).
//!   `-- --keep-document` keeps the files and prints their paths.

use std::fs::File;
use std::io::{self, BufWriter, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use energy_auction::clearing::{ClearingStep, Limits, clear};
use energy_auction::curves::Curves;
use energy_core::hash::mix64;
use energy_core::market::Side;
use energy_core::money::{Lots, PriceCents};

fn steps(n: usize) -> Vec<ClearingStep> {
    let mut x = 42u64;
    (0..n)
        .map(|i| {
            x = mix64(x);
            let buy = i % 2 == 0;
            // Buys centred above sells so the curves cross in the middle, on a 0.01 tick.
            let centre: i64 = if buy { 9_000 } else { 7_000 };
            let price = (centre + (x % 10_000) as i64 - 5_000).clamp(-50_000, 400_000);
            ClearingStep {
                id: format!("s{i:07}"),
                side: if buy { Side::Buy } else { Side::Sell },
                price: PriceCents(price),
                quantity: Lots(1 + (x >> 40) as i64 % 500),
                receipt: i as u64,
                record_id: format!("o{}", i / 20),
            }
        })
        .collect()
}

/// `{"steps": [...]}` with SDAC's limits, the document `energy auction clear` reads.
#[derive(serde::Serialize)]
struct Document<'a> {
    steps: &'a [ClearingStep],
}

/// The median and the best of `runs` runs of `f`, and its last answer.
fn median_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, Duration, T) {
    let mut times = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        let start = Instant::now();
        last = Some(f());
        times.push(start.elapsed());
    }
    times.sort();
    let last = last.expect("at least one run");
    (times[runs / 2], times[0], last)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let keep_document = std::env::args().any(|a| a == "--keep-document");
    let limits = Limits {
        min_price: PriceCents(-50_000),
        max_price: PriceCents(400_000),
    };
    println!(
        "{:>10}  {:>12}  {:>12}  {:>16}  {:>8}  clearing",
        "steps", "engine med", "engine best", "document path", "× engine"
    );
    let mut million = Vec::new();
    for n in [1_000usize, 100_000, 1_000_000] {
        let input = steps(n);
        let runs = if n >= 1_000_000 { MILLION_RUNS } else { 21 };
        let (median, best, c) = median_of(runs, || clear(&input, limits));
        let doc = serde_json::to_vec(&Document { steps: &input }).expect("serializable");
        let (doc_median, _, written) = median_of(runs.min(7), || {
            Curves::from_slice(&doc)
                .expect("a valid document")
                .write_results(io::sink())
        });
        written.expect("written");
        println!(
            "{n:>10}  {:>9.2} ms  {:>9.2} ms  {:>13.2} ms  {:>8.2}  {} MW at {}",
            ms(median),
            ms(best),
            ms(doc_median),
            doc_median.as_secs_f64() / median.as_secs_f64(),
            c.volume,
            c.price
                .map_or("no price".to_string(), |p| format!("{p} EUR/MWh")),
        );
        if n == 1_000_000 {
            million.push(("in id order", median, doc));
            let shuffled = shuffled(input);
            let (median, _, _) = median_of(runs, || clear(&shuffled, limits));
            let doc = serde_json::to_vec(&Document { steps: &shuffled }).expect("serializable");
            million.push(("shuffled", median, doc));
        }
    }
    println!();
    let Some(bin) = energy_bin() else {
        println!(
            "whole command: skipped, no `energy` binary (set ENERGY_BIN, or run \
             `cargo build --release -p energy-local --bin energy` first)"
        );
        return;
    };
    if is_older_than_the_code(&bin) {
        println!(
            "note: {} is older than crates/auction/src; `cargo build --release -p energy-local \
             --bin energy` for figures of the current code",
            bin.display()
        );
    }
    for (order, engine, doc) in million {
        whole_command(&bin, order, engine, &doc, keep_document);
    }
}

/// Whether `bin` was built before the last change to this crate's sources.
fn is_older_than_the_code(bin: &Path) -> bool {
    fn newest(dir: &Path) -> Option<SystemTime> {
        std::fs::read_dir(dir)
            .ok()?
            .flatten()
            .filter_map(|entry| match entry.file_type() {
                Ok(t) if t.is_dir() => newest(&entry.path()),
                _ => entry.metadata().and_then(|m| m.modified()).ok(),
            })
            .max()
    }
    let built = std::fs::metadata(bin).and_then(|m| m.modified()).ok();
    let code = newest(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    matches!((built, code), (Some(built), Some(code)) if built < code)
}

/// The steps in an order of their own, the same every run.
fn shuffled(mut steps: Vec<ClearingStep>) -> Vec<ClearingStep> {
    let mut x = 7u64;
    for i in (1..steps.len()).rev() {
        x = mix64(x);
        steps.swap(i, (x % (i as u64 + 1)) as usize);
    }
    steps
}

/// The 1M-step case through the `energy` binary, against the engine's median on its steps.
fn whole_command(bin: &Path, order: &str, engine: Duration, doc: &[u8], keep_document: bool) {
    let path = std::env::temp_dir().join(format!(
        "energy-clearing-1m-{}.json",
        order.replace(' ', "-")
    ));
    if let Err(e) = write_document(&path, doc) {
        println!(
            "whole command: skipped, cannot write {}: {e}",
            path.display()
        );
        return;
    }
    let size = doc.len() as f64;
    let time = Path::new("/usr/bin/time");
    let time = time.exists().then_some(time);
    let runs = MILLION_RUNS;
    let mut to_null = Vec::with_capacity(runs);
    let mut piped = Vec::with_capacity(runs);
    let mut peaks = Vec::with_capacity(runs);
    // One run first, not counted: the file into the page cache, the binary loaded.
    if let Err(e) = run_once(bin, &path, Output::Null) {
        println!("whole command: {} failed: {e}", bin.display());
        done_with(&path, keep_document);
        return;
    }
    for _ in 0..runs {
        let run = run_once(bin, &path, Output::Null).and_then(|(wall, _)| {
            to_null.push(wall);
            run_once(bin, &path, Output::Pipe(time))
        });
        match run {
            Ok((wall, peak)) => {
                piped.push(wall);
                peaks.extend(peak);
            }
            Err(e) => {
                println!("whole command: {} failed: {e}", bin.display());
                done_with(&path, keep_document);
                return;
            }
        }
    }
    to_null.sort();
    piped.sort();
    peaks.sort_unstable();
    println!(
        "1M steps {order}, one MTU: `{} auction clear {}` ({:.1} MiB)",
        bin.display(),
        path.display(),
        size / MIB
    );
    println!(
        "  engine (clear, in process)             {:>9.2} ms  median of {MILLION_RUNS}",
        ms(engine)
    );
    for (how, walls) in [
        ("stdout to /dev/null", &to_null),
        ("stdout read from a pipe", &piped),
    ] {
        let wall = walls[walls.len() / 2];
        println!(
            "  whole command, {how:<23} {:>9.2} ms  median of {}   {:>6.2} × engine",
            ms(wall),
            walls.len(),
            wall.as_secs_f64() / engine.as_secs_f64()
        );
    }
    match peaks.get(peaks.len() / 2) {
        Some(&kib) => println!(
            "  peak memory (max RSS), piped runs      {:>9.1} MiB median of {}   {:>6.2} × document",
            kib as f64 * 1024.0 / MIB,
            peaks.len(),
            kib as f64 * 1024.0 / size
        ),
        None => println!("  peak memory: not measured (no /usr/bin/time)"),
    }
    done_with(&path, keep_document);
}

/// Keeps or removes the document at the end of its case.
fn done_with(path: &Path, keep_document: bool) {
    if keep_document {
        println!("  document kept: {}", path.display());
    } else if let Err(e) = std::fs::remove_file(path) {
        println!("  cannot remove {}: {e}", path.display());
    }
}

const MIB: f64 = 1024.0 * 1024.0;

/// Runs of each figure for 1M steps.
const MILLION_RUNS: usize = 7;

fn energy_bin() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("ENERGY_BIN") {
        return Some(bin.into());
    }
    // target/release/deps/clearing-… → target/release/energy
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.parent()?.join("energy");
    bin.exists().then_some(bin)
}

fn write_document(path: &Path, doc: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut file = BufWriter::new(std::fs::File::create(path)?);
    file.write_all(doc)?;
    file.flush()
}

/// Where a run's standard output goes.
#[derive(Clone, Copy)]
enum Output<'a> {
    /// To `/dev/null`: the command alone, as hyperfine times it.
    Null,
    /// Into a pipe read here 1 MiB at a time, the command under `time` when there is one.
    Pipe(Option<&'a Path>),
}

/// Bytes read from the pipe at a time.
const READ_AT_ONCE: usize = 1 << 20;

/// One run of `bin auction clear path`: the wall time, and the peak memory in KiB when `time`
/// measured it.
fn run_once(bin: &Path, path: &Path, output: Output) -> io::Result<(Duration, Option<u64>)> {
    let time = match output {
        Output::Pipe(time) => time,
        Output::Null => None,
    };
    let mut command = match time {
        Some(time) => {
            let mut c = Command::new(time);
            c.args(["-f", "%M"]).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    let stdout = match output {
        Output::Null => Stdio::from(File::create("/dev/null")?),
        Output::Pipe(_) => Stdio::piped(),
    };
    command
        .args(["auction", "clear"])
        .arg(path)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = command.spawn()?;
    let mut stderr = child
        .stderr
        .take()
        .ok_or_else(|| io::Error::other("no stderr"))?;
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).map(|_| text)
    });
    if let Some(mut stdout) = child.stdout.take() {
        let mut buf = vec![0u8; READ_AT_ONCE];
        loop {
            match stdout.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
    let status = child.wait()?;
    let wall = start.elapsed();
    let errors = errors
        .join()
        .map_err(|_| io::Error::other("stderr reader panicked"))??;
    if !status.success() {
        return Err(io::Error::other(format!("{status}: {errors}")));
    }
    let peak = time.and_then(|_| errors.lines().last()?.trim().parse().ok());
    Ok((wall, peak))
}
