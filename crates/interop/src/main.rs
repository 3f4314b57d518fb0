//! `mimi-interop demo` runs the specification's example flow over three real providers and
//! narrates it; `mimi-interop interop [--list] [-v] [NAME]` runs every scenario (or one)
//! and prints `PASS`/`FAIL` lines and the summary `N passed, N failed`. The exit status is
//! non-zero on any failure. `mimi-interop chaos [--quick]` runs the chaos suite
//! (`mimi_interop::chaos`). The `mimi-hub` binary is found beside this executable or named
//! by `MIMI_HUB_BIN`.

use std::process::ExitCode;

use mimi_interop::harness::locate_hub_binary;
use mimi_interop::scenarios::{self, SCENARIOS, Scenario};

const USAGE: &str = "usage: mimi-interop <demo | interop [--list] [-v] [NAME] | chaos [--quick]>";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, rest) = match args.split_first() {
        Some((c, rest)) => (c.as_str(), rest),
        None => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    if command == "chaos" {
        return chaos(rest);
    }
    let mut list = false;
    let mut verbose = false;
    let mut names = Vec::new();
    for a in rest {
        match a.as_str() {
            "--list" => list = true,
            "-v" | "--verbose" => verbose = true,
            other if other.starts_with('-') => {
                eprintln!("unknown option {other}\n{USAGE}");
                return ExitCode::from(2);
            }
            other => names.push(other.to_owned()),
        }
    }
    let selected: Vec<&Scenario> = match command {
        "demo" if rest.is_empty() => {
            verbose = true;
            SCENARIOS
                .iter()
                .filter(|s| s.name == "example-flow")
                .collect()
        }
        "interop" if list => {
            for s in SCENARIOS {
                println!("{:<22} {}", s.name, s.description);
            }
            return ExitCode::SUCCESS;
        }
        "interop" if names.is_empty() => SCENARIOS.iter().collect(),
        "interop" => {
            let mut chosen = Vec::new();
            for n in &names {
                match scenarios::find(n) {
                    Some(s) => chosen.push(s),
                    None => {
                        eprintln!("no scenario {n:?}; `mimi-interop interop --list` names them");
                        return ExitCode::from(2);
                    }
                }
            }
            chosen
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let binary = match locate_hub_binary() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("mimi-interop: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mimi-interop: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if command == "demo" {
        println!(
            "MIMI demo: three providers (a.mimi.test, b.mimi.test, c.mimi.test) as real mimi-hub processes on loopback, with a private CA, redb storage in a temporary folder, and real MLS clients"
        );
    }
    let summary = runtime.block_on(scenarios::run_suite(&binary, &selected, verbose));
    if summary.failed == 0 && summary.passed == selected.len() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `mimi-interop chaos [--quick]`: the chaos suite (`mimi_interop::chaos`).
fn chaos(args: &[String]) -> ExitCode {
    let intensity = match args {
        [] => mimi_interop::chaos::FULL,
        [quick] if quick == "--quick" => mimi_interop::chaos::QUICK,
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let binary = match locate_hub_binary() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("mimi-interop: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mimi-interop: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let summary = runtime.block_on(mimi_interop::chaos::run_chaos(&binary, intensity));
    if summary.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
