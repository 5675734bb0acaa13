//! The README's walk through the API, run exactly as written (its `sh`
//! blocks, in order, in bash) against a fresh `consign serve --demo`, the
//! server `cargo run` starts.

use std::time::Duration;

use consign_testkit::TestDb;

use crate::demo::ServeProcess;

/// The `sh` blocks of the README's "A first walk through the API", joined.
fn walk() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).expect("README.md");
    let section = readme.split("\n## A first walk through the API\n").nth(1).expect("the walk section");
    let section = section.split("\n## ").next().unwrap_or_default();
    let blocks: Vec<&str> =
        section.split("```sh\n").skip(1).map(|block| block.split("```").next().unwrap_or_default()).collect();
    assert!(!blocks.is_empty(), "the walk has no sh block");
    blocks.join("\n")
}

#[tokio::test]
async fn the_walk_in_the_readme_runs_as_written() {
    let test_db = TestDb::new().await;
    let server = ServeProcess::start(&test_db.url, &["--demo"]);
    let child = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("set -euo pipefail\n{}", walk()))
        .env("CONSIGN", &server.address)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("bash runs");
    let pid = child.id().to_string();
    let run = tokio::task::spawn_blocking(move || child.wait_with_output());
    let output = match tokio::time::timeout(Duration::from_secs(120), run).await {
        Ok(finished) => finished.expect("the walk's thread").expect("the walk's output"),
        Err(_) => {
            let _ = std::process::Command::new("kill").args(["-9", &pid]).status();
            panic!("the walk did not finish within two minutes");
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the walk failed ({}):\n{stdout}\n{stderr}", output.status);
    // It did what it says: a key, a paid order with its messages, shipped
    // and delivered, every step on the timeline.
    for expected in [
        "ada@example.com",
        "csk_",
        "Can it leave before Friday?",
        "\"payment_status\": \"paid\"",
        "in_transit",
        "order.paid",
        "shipment.delivered",
        "\"fulfillment_status\": \"delivered\"",
    ] {
        assert!(stdout.contains(expected), "`{expected}` is not in what the walk printed:\n{stdout}\n{stderr}");
    }
}
