//! `energy auction clear FILE`, run as a user runs it: the results it prints through a pipe
//! (which it widens) and into a file are the results in process, byte for byte.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use energy_auction::curves::clear_document;
use serde_json::json;

/// A document of `n` steps, out of id order, whose results take several MiB.
fn document(n: u64) -> String {
    let steps: Vec<_> = (0..n)
        .map(|i| {
            let k = (i * 7_919) % n;
            let side = if k.is_multiple_of(2) { "BUY" } else { "SELL" };
            json!({
                "id": format!("s{k:06}"),
                "side": side,
                "price": format!("{}.{:02}", 40 + k % 60, k % 100),
                "quantity": format!("{}.{}", 1 + k % 50, k % 10),
                "receipt": k,
            })
        })
        .collect();
    json!({"steps": steps}).to_string()
}

/// The document written to a file of its own: its path, and the bytes the command must print.
fn written(name: &str, n: u64) -> (PathBuf, Vec<u8>) {
    let text = document(n);
    let path = std::env::temp_dir().join(format!(
        "energy-auction-clear-{name}-{}.json",
        std::process::id()
    ));
    std::fs::write(&path, &text).expect("write the document");
    let results = clear_document(&text).expect("a valid document");
    let mut expected = serde_json::to_vec_pretty(&results).expect("JSON");
    expected.push(b'\n');
    (path, expected)
}

fn clear(path: &PathBuf, stdout: Stdio) -> Output {
    Command::new(env!("CARGO_BIN_EXE_energy"))
        .args(["auction", "clear"])
        .arg(path)
        .stdout(stdout)
        .output()
        .expect("run energy auction clear")
}

#[test]
fn results_through_a_pipe_are_the_results_in_process() {
    let (path, expected) = written("pipe", 30_000);
    assert!(expected.len() > 2 << 20, "more than a widened pipe holds");
    let out = clear(&path, Stdio::piped());
    std::fs::remove_file(&path).expect("remove the document");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout == expected, "the bytes differ");
}

#[test]
fn results_into_a_file_are_the_results_in_process() {
    let (path, expected) = written("file", 3_000);
    let into = path.with_extension("out");
    let file = std::fs::File::create(&into).expect("create the output file");
    let out = clear(&path, Stdio::from(file));
    std::fs::remove_file(&path).expect("remove the document");
    let printed = std::fs::read(&into).expect("read the output file");
    std::fs::remove_file(&into).expect("remove the output file");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(printed == expected, "the bytes differ");
}
