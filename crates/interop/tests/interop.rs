//! The interop suite as a test: every scenario over three real `mimi-hub` processes.
//!
//! An integration test of this package does not get `CARGO_BIN_EXE_mimi-hub` (that is set
//! only for the binaries of the package under test), so the test builds the hub itself with
//! `$CARGO build -p mimi-hub -p mimi-interop` (cargo sets `CARGO` for tests; the build is a no-op when the
//! binary is fresh) and hands its path to the suite.

use std::path::PathBuf;
use std::process::Command;

use mimi_interop::scenarios::{SCENARIOS, Summary, run_suite};

fn build_hub() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        // The same package set as `cargo xtask interop`, so that both share one feature
        // resolution and neither rebuilds what the other built.
        .args(["build", "--quiet", "-p", "mimi-hub", "-p", "mimi-interop"])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo build -p mimi-hub failed: {status}");
    // target/<profile>/deps/interop-<hash> -> target/<profile>/mimi-hub
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let hub = profile_dir.join(format!("mimi-hub{}", std::env::consts::EXE_SUFFIX));
    assert!(hub.is_file(), "{} was not built", hub.display());
    hub
}

#[test]
fn every_scenario_passes_over_three_real_providers() {
    let hub = build_hub();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let all: Vec<_> = SCENARIOS.iter().collect();
    let summary = runtime.block_on(run_suite(&hub, &all, false));
    assert_eq!(
        summary,
        Summary {
            passed: SCENARIOS.len(),
            failed: 0
        }
    );
}
