//! Project automation, run as `cargo xtask <task>` (the cargo-xtask convention).
//!
//! Tasks: `ci` runs exactly what `.ci/run` runs; `fuzz <target> <seconds>` runs one
//! cargo-fuzz target for a bounded time; `bench [--quick]` prints the benchmark figures
//! (`docs/performance.md`).

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("fuzz") => fuzz(&args[1..]),
        Some("bench") => bench(&args[1..]),
        _ => {
            eprintln!("usage: cargo xtask <ci | fuzz TARGET SECONDS | bench [--quick]>");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The steps of `.ci/run`, in order. `.ci/run` calls `cargo xtask ci`, so the two are one.
fn ci() -> Result<(), String> {
    run("cargo", &["fmt", "--all", "--check"])?;
    run(
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    run("cargo", &["test", "--workspace"])
}

/// `cargo xtask fuzz TARGET SECONDS`: installs cargo-fuzz from crates.io when missing and
/// runs one target for at most SECONDS on the stable toolchain (`-s none`).
fn fuzz(args: &[String]) -> Result<(), String> {
    let [target, seconds] = args else {
        return Err("usage: cargo xtask fuzz TARGET SECONDS".into());
    };
    let seconds: u64 = seconds
        .parse()
        .map_err(|_| format!("SECONDS must be a whole number, got {seconds:?}"))?;
    let have_fuzz = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !have_fuzz {
        run("cargo", &["install", "cargo-fuzz", "--locked"])?;
    }
    let max_time = format!("-max_total_time={seconds}");
    run(
        "cargo",
        &["fuzz", "run", target, "-s", "none", "--", &max_time],
    )
}

/// `cargo xtask bench [--quick]`: builds `mimi-bench` in release mode and prints every
/// figure (`mimi-bench all`); further arguments go to `mimi-bench` as they are.
fn bench(args: &[String]) -> Result<(), String> {
    let mut command = vec!["run", "--release", "-p", "mimi-bench", "--", "all"];
    command.extend(args.iter().map(String::as_str));
    run("cargo", &command)
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    eprintln!("$ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .status()
        .map_err(|e| format!("could not start {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{program} {} failed with {status}", args.join(" ")))
    }
}
