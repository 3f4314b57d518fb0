//! `mimi-interop demo` runs the specification's example flow over three real providers and
//! narrates it; `mimi-interop interop [--list] [-v] [NAME]` runs every scenario (or one)
//! and prints `PASS`/`FAIL` lines and the summary `N passed, N failed`. The exit status is
//! non-zero on any failure. `mimi-interop chaos [--quick]` runs the chaos suite
//! (`mimi_interop::chaos`). The `mimi-hub` binary is found beside this executable or named
//! by `MIMI_HUB_BIN`.

use std::process::ExitCode;

use mimi_interop::harness::locate_hub_binary;
use mimi_interop::scenarios::{self, SCENARIOS, Scenario};

const USAGE: &str = "usage: mimi-interop <demo | interop [--list] [-v] [NAME] | chaos [--quick] | interop-haven --haven PATH [--target-dir DIR] [--hex] | probe06 --peer https://HOST:PORT [--connect IP:PORT] [--prefix P] --ca CA --cert CERT --key KEY --our-domain D [--hex]>";

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
    if command == "probe06" {
        return probe06(rest);
    }
    if command == "interop-haven" {
        return interop_haven(rest);
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

fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => Some(r),
        Err(e) => {
            eprintln!("mimi-interop: cannot start the runtime: {e}");
            None
        }
    }
}

/// `mimi-interop probe06 ...`: the -06 conformance probe (`mimi_interop::probe06`). Exits
/// non-zero when a request failed.
fn probe06(args: &[String]) -> ExitCode {
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    let report = runtime.block_on(async {
        let config = mimi_interop::probe06::parse_args(args).await?;
        let report = mimi_interop::probe06::run(&config).await?;
        Ok::<_, mimi_interop::probe06::ProbeError>((report, config.hex))
    });
    match report {
        Ok((report, hex)) => {
            print!("{}", report.render(hex));
            if report.counts().failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e @ mimi_interop::probe06::ProbeError::Usage(_)) => {
            eprintln!("mimi-interop probe06: {e}\n{USAGE}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("mimi-interop probe06: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `mimi-interop interop-haven --haven PATH [--target-dir DIR] [--hex]`: build Haven's
/// `mimi-hubd` from the checkout at PATH (into DIR, by default `PATH/target`), start it with
/// certificates from a fresh CA of ours, run the -06 probe against it and stop it
/// (`mimi_interop::haven`). Exits non-zero only when the run could not be made: Haven's
/// divergences are results, recorded in docs/interop.md.
fn interop_haven(args: &[String]) -> ExitCode {
    let mut haven = None;
    let mut target = None;
    let mut hex = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--haven" => haven = it.next().map(std::path::PathBuf::from),
            "--target-dir" => target = it.next().map(std::path::PathBuf::from),
            "--hex" => hex = true,
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(haven) = haven else {
        eprintln!("interop-haven needs --haven PATH\n{USAGE}");
        return ExitCode::from(2);
    };
    let target = target.unwrap_or_else(|| haven.join("target"));
    let binary = match mimi_interop::haven::build(&haven, &target) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("mimi-interop interop-haven: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ours = mimi_interop::haven::commit_of(std::path::Path::new(env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|| "unknown".into());
    let theirs = mimi_interop::haven::commit_of(&haven).unwrap_or_else(|| "unknown".into());
    println!(
        "-06 probe: mimi-rs {ours} (as {}) against Haven mimi-hubd {theirs} (as {})",
        mimi_interop::haven::PROBE_DOMAIN,
        mimi_interop::haven::HAVEN_DOMAIN
    );
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(mimi_interop::haven::run(&binary, hex)) {
        Ok(report) => {
            print!("{}", report.render(hex));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mimi-interop interop-haven: {e}");
            ExitCode::FAILURE
        }
    }
}
