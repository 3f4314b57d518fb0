//! Project automation, run as `cargo xtask <task>` (the cargo-xtask convention).
//!
//! Tasks: `ci` runs exactly what `.ci/run` runs; `fuzz <target> <seconds>` runs one
//! cargo-fuzz target for a bounded time; `bench [--quick]` prints the benchmark figures
//! (`docs/performance.md`); `demo` runs the specification's example flow over three real
//! providers and `interop [--list] [-v] [NAME]` the interop suite (`docs/interop.md`);
//! `vectors` regenerates the conformance vectors `conformance/v1/*.json`
//! (`docs/wire-format.md` §11); `chaos [--quick]` runs the chaos suite
//! (`docs/reliability.md`); `probe06 --peer https://HOST:PORT ...` runs the -06 conformance
//! probe against a peer provider and `interop-haven --haven PATH` builds, starts and probes
//! Haven's `mimi-hubd` from a local checkout (`docs/interop.md`; not part of CI).

use std::process::{Command, ExitCode};

#[cfg(test)]
mod tidy;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("fuzz") => fuzz(&args[1..]),
        Some("bench") => bench(&args[1..]),
        Some("vectors") => vectors(),
        Some("demo") => return interop("demo", &args[1..]),
        Some("interop") => return interop("interop", &args[1..]),
        Some("chaos") => return interop("chaos", &args[1..]),
        Some("probe06") => return interop("probe06", &args[1..]),
        Some("interop-haven") => return interop("interop-haven", &args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <ci | fuzz TARGET SECONDS | bench [SUITE] [--quick] [--rooms N,N,...] [--haven PATH] | demo | interop [--list] [-v] [NAME] | chaos [--quick] | probe06 --peer https://HOST:PORT [--connect IP:PORT] [--prefix P] --ca CA --cert CERT --key KEY --our-domain D [--hex] | interop-haven --haven PATH | vectors>"
            );
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

/// The steps of `.ci/run`, in order (fmt, clippy, the short benchmark, the tests).
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
    // Issue 7: CI runs the short benchmark so the harness never rots (figures only, no
    // thresholds). The tests come last so that their summary closes the run.
    bench(&["--quick".to_owned()])?;
    if interop("chaos", &["--quick".to_owned()]) != ExitCode::SUCCESS {
        return Err("the chaos suite failed".into());
    }
    test_with_total()
}

/// `cargo test --workspace`, echoing its output, then the total of its per-binary summaries
/// as the closing line (`N passed, N failed`), as `.ci/run` prints it.
fn test_with_total() -> Result<(), String> {
    use std::io::{BufRead, BufReader};
    eprintln!("$ cargo test --workspace");
    let mut child = Command::new("cargo")
        .args(["test", "--workspace"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not start cargo test: {e}"))?;
    let (mut passed, mut failed) = (0u64, 0u64);
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("{line}");
            if let Some(rest) = line.strip_prefix("test result: ") {
                let words: Vec<&str> = rest.split_whitespace().collect();
                passed += words.get(1).and_then(|n| n.parse().ok()).unwrap_or(0);
                failed += words.get(3).and_then(|n| n.parse().ok()).unwrap_or(0);
            }
        }
    }
    let status = child.wait().map_err(|e| format!("cargo test: {e}"))?;
    println!("{passed} passed, {failed} failed");
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo test --workspace failed with {status}"))
    }
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

/// `cargo xtask demo` and `cargo xtask interop [ARGS]`: build `mimi-hub` and
/// `mimi-interop` (and `mimi-client`, for one feature resolution with the interop test), then run `mimi-interop <command> ARGS` (it finds `mimi-hub` beside
/// itself) and exit with its status.
fn interop(command: &str, args: &[String]) -> ExitCode {
    if let Err(message) = run(
        "cargo",
        &[
            "build",
            "--quiet",
            "-p",
            "mimi-hub",
            "-p",
            "mimi-interop",
            "-p",
            "mimi-client",
        ],
    ) {
        eprintln!("xtask: {message}");
        return ExitCode::FAILURE;
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
        });
    let binary = target
        .join("debug")
        .join(format!("mimi-interop{}", std::env::consts::EXE_SUFFIX));
    match Command::new(&binary).arg(command).args(args).status() {
        Ok(status) => match status.code() {
            Some(0) => ExitCode::SUCCESS,
            Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
            None => ExitCode::FAILURE,
        },
        Err(e) => {
            eprintln!("xtask: could not start {}: {e}", binary.display());
            ExitCode::FAILURE
        }
    }
}

/// Write `conformance/v1/*.json` from the codec's values: the codec test that checks them,
/// run with `MIMI_WRITE_CONFORMANCE=1` (it writes the files, then checks them as always).
fn vectors() -> Result<(), String> {
    eprintln!("$ MIMI_WRITE_CONFORMANCE=1 cargo test -p mimi-codec --test codec conformance");
    let status = Command::new("cargo")
        .args(["test", "-p", "mimi-codec", "--test", "codec", "conformance"])
        .env("MIMI_WRITE_CONFORMANCE", "1")
        .status()
        .map_err(|e| format!("could not start cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "writing the conformance vectors failed with {status}"
        ))
    }
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
