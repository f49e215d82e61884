//! `energy auction clear FILE`, run as a user runs it: the results it prints through a pipe
//! (which it widens) and into a file are the results in process, byte for byte.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use energy_auction::curves::clear_document;
use serde_json::json;

/// A document of `n` steps, out of id order, whose results take several MiB.
fn document(n: u64) -> String {
    json!({"steps": steps(n, true)}).to_string()
}

/// `n` steps, out of id order or in it.
fn steps(n: u64, shuffled: bool) -> Vec<serde_json::Value> {
    (0..n)
        .map(|i| {
            let k = if shuffled { (i * 7_919) % n } else { i };
            let side = if k.is_multiple_of(2) { "BUY" } else { "SELL" };
            json!({
                "id": format!("s{k:06}"),
                "side": side,
                "price": format!("{}.{:02}", 40 + k % 60, k % 100),
                "quantity": format!("{}.{}", 1 + k % 50, k % 10),
                "receipt": k,
            })
        })
        .collect()
}

/// The document written to a file of its own: its path, and the bytes the command must print.
fn written(name: &str, n: u64) -> (PathBuf, Vec<u8>) {
    written_text(name, &document(n))
}

fn written_text(name: &str, text: &str) -> (PathBuf, Vec<u8>) {
    let path = std::env::temp_dir().join(format!(
        "energy-auction-clear-{name}-{}.json",
        std::process::id()
    ));
    std::fs::write(&path, text).expect("write the document");
    let results = clear_document(text).expect("a valid document");
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

fn assert_success(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn results_through_a_pipe_are_the_results_in_process() {
    let (path, expected) = written("pipe", 30_000);
    assert!(expected.len() > 2 << 20, "more than a widened pipe holds");
    let out = clear(&path, Stdio::piped());
    std::fs::remove_file(&path).expect("remove the document");
    assert_success(&out);
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
    assert_success(&out);
    assert!(printed == expected, "the bytes differ");
}

/// More steps than make an MTU large (65 536): cleared on threads of their own beside the
/// check of their ids, their fills formatted block by block by two threads.
#[test]
fn a_large_mtu_in_and_out_of_id_order_through_a_pipe_prints_the_results_in_process() {
    let mut printed = Vec::new();
    for shuffled in [true, false] {
        let text = json!({"steps": steps(70_000, shuffled)}).to_string();
        let (path, expected) = written_text(&format!("large-{shuffled}"), &text);
        let out = clear(&path, Stdio::piped());
        std::fs::remove_file(&path).expect("remove the document");
        assert_success(&out);
        assert!(
            out.stdout == expected,
            "the bytes differ, shuffled: {shuffled}"
        );
        printed.push(out.stdout);
    }
    assert!(printed[0] == printed[1], "the same steps in another order");
}

#[test]
fn a_repeated_id_in_a_large_shuffled_mtu_is_refused_as_in_process() {
    let mut steps = steps(70_000, true);
    steps[60_000]["id"] = steps[123]["id"].clone();
    let text = json!({"steps": steps}).to_string();
    let refused = clear_document(&text).expect_err("a repeated id");
    assert!(
        refused.0.starts_with("mtus[0].steps[60000].id: "),
        "{refused}"
    );
    let path = std::env::temp_dir().join(format!(
        "energy-auction-clear-repeated-{}.json",
        std::process::id()
    ));
    std::fs::write(&path, &text).expect("write the document");
    let out = clear(&path, Stdio::piped());
    std::fs::remove_file(&path).expect("remove the document");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("energy auction clear: {}: {refused}\n", path.display())
    );
}
