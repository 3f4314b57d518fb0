//! The interop suite as a test: every scenario over three real `mimi-hub` processes.
//!
//! An integration test of this package does not get `CARGO_BIN_EXE_mimi-hub` (that is set
//! only for the binaries of the package under test), so the test builds the hub itself with
//! `$CARGO build -p mimi-hub -p mimi-interop -p mimi-client` (cargo sets `CARGO` for tests;
//! the build is a no-op when the binaries are fresh; `mimi-client` brings the `mimi`
//! command line, which the `cli` module drives) and hands its path to the suite.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use mimi_interop::scenarios::{SCENARIOS, Scenario, ScenarioFuture, Summary, run_suite};
use mimi_interop::world::{Failure, World};

/// The hub binary, built once for all tests of this file.
fn hub() -> &'static Path {
    static HUB: OnceLock<PathBuf> = OnceLock::new();
    HUB.get_or_init(build_hub)
}

fn build_hub() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        // The same package set as `cargo xtask interop`, so that both share one feature
        // resolution and neither rebuilds what the other built.
        .args([
            "build",
            "--quiet",
            "-p",
            "mimi-hub",
            "-p",
            "mimi-interop",
            "-p",
            "mimi-client",
        ])
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
    let hub = hub();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let all: Vec<_> = SCENARIOS.iter().collect();
    let summary = runtime.block_on(run_suite(hub, &all, false));
    assert_eq!(
        summary,
        Summary {
            passed: SCENARIOS.len(),
            failed: 0
        }
    );
}

fn always_fails(w: &mut World) -> ScenarioFuture<'_> {
    Box::pin(async move {
        let alice = w.person(0, "alice", None).await?;
        Err(Failure::Mismatch {
            what: "a deliberate failure".into(),
            expected: "nothing".into(),
            actual: alice.label,
        })
    })
}

#[test]
fn a_failing_scenario_is_counted_as_failed() {
    let hub = hub();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let failing = Scenario {
        name: "always-fails",
        description: "registers alice, then fails",
        run: always_fails,
    };
    let summary = runtime.block_on(run_suite(hub, &[&failing], false));
    assert_eq!(
        summary,
        Summary {
            passed: 0,
            failed: 1
        }
    );
}

#[path = "interop/cli.rs"]
mod cli;

#[path = "interop/probe06.rs"]
mod probe06;
