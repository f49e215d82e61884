//! `energy demo`, run as a user runs it.

use std::process::Command;

#[test]
fn energy_demo_exits_0_and_its_summary_shows_one_order_of_each_outcome() {
    let out = Command::new(env!("CARGO_BIN_EXE_energy"))
        .arg("demo")
        .output()
        .expect("run energy demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "energy demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = stdout.split("\nSummary\n").nth(1).expect("a summary");
    for (id, outcome) in [
        ("demo-accepted", "ACCEPTED"),
        ("demo-partial", "PARTIALLY_ACCEPTED"),
        ("demo-rejected", "REJECTED"),
        ("demo-invalid", "INVALID"),
        ("demo-timeout", "RESULTS_TIMEOUT"),
        ("demo-cancelled", "CANCELLED"),
        ("demo-amended", "ACCEPTED"),
        ("demo-kept", "ACCEPTED"),
    ] {
        let line = summary
            .lines()
            .find(|l| l.trim_start().starts_with(id))
            .unwrap_or_else(|| panic!("no {id} in:\n{summary}"));
        assert_eq!(line.split_whitespace().nth(1), Some(outcome), "{line}");
    }
    assert!(
        summary.contains("4 result objects, 3 Slack messages"),
        "{summary}"
    );
    assert!(
        summary.contains("slack: :warning: Withdrawal refused: demo-kept"),
        "{summary}"
    );
}
