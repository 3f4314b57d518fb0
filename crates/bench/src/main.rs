//! `mimi-bench`: prints the benchmark figures as Markdown tables.
//!
//! ```text
//! mimi-bench [all | ceiling | hub | scale | mls] [--quick] [--runs N] [--seconds S] [--clients N]
//! mimi-bench serve-ceiling DIR NAME     (the ceiling server process the harness starts)
//! ```
//!
//! `all` (the default) prints every figure; `hub` prints the ceiling and the hub figures
//! (the ratio needs both), `scale` and `mls` their own. The hub and scale figures need the
//! `mimi-hub` binary (beside this one, built first under `cargo run`, or `$MIMI_HUB_BIN`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use mimi_bench::machine::Machine;
use mimi_bench::suite::{self, BenchError, SERVE_CEILING_COMMAND, Settings};
use mimi_bench::{Table, figure::format_value};

const USAGE: &str = "usage: mimi-bench [all | ceiling | hub | scale | mls] [--quick] \
[--runs N] [--seconds S] [--clients N]";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Suite {
    All,
    Ceiling,
    Hub,
    Scale,
    Mls,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(SERVE_CEILING_COMMAND) {
        return match &args[1..] {
            [dir, name] => finish(suite::serve_ceiling_process(&PathBuf::from(dir), name)),
            _ => usage(&format!(
                "usage: mimi-bench {SERVE_CEILING_COMMAND} DIR NAME"
            )),
        };
    }
    let (which, settings) = match parse(&args) {
        Ok(parsed) => parsed,
        Err(message) => return usage(&message),
    };
    finish(run(which, &settings))
}

fn usage(message: &str) -> ExitCode {
    eprintln!("mimi-bench: {message}\n{USAGE}");
    ExitCode::from(2)
}

fn finish(result: Result<(), BenchError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mimi-bench: {error}");
            ExitCode::FAILURE
        }
    }
}

fn parse(args: &[String]) -> Result<(Suite, Settings), String> {
    let mut which = Suite::All;
    let mut settings = Settings::FULL;
    let mut overrides: Vec<(&str, &str)> = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "all" => which = Suite::All,
            "ceiling" => which = Suite::Ceiling,
            "hub" => which = Suite::Hub,
            "scale" => which = Suite::Scale,
            "mls" => which = Suite::Mls,
            "--quick" => settings = Settings::QUICK,
            flag @ ("--runs" | "--seconds" | "--clients") => {
                let value = rest.next().ok_or(format!("{flag} needs a value"))?;
                overrides.push((flag, value));
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    // Overrides apply after `--quick`, wherever they stand.
    for (flag, value) in overrides {
        let bad = || format!("{flag} needs a positive number, got {value:?}");
        match flag {
            "--runs" => settings.runs = value.parse().ok().filter(|&n| n > 0).ok_or_else(bad)?,
            "--clients" => {
                settings.clients = value.parse().ok().filter(|&n| n > 0).ok_or_else(bad)?;
            }
            _ => {
                let seconds: f64 = value
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0)
                    .ok_or_else(bad)?;
                settings.phase = Duration::from_secs_f64(seconds);
            }
        }
    }
    Ok((which, settings))
}

fn run(which: Suite, settings: &Settings) -> Result<(), BenchError> {
    let exe = std::env::current_exe().map_err(BenchError::Runtime)?;
    println!("## mimi-bench");
    println!();
    println!("Machine: {}", Machine::this());
    println!(
        "Settings: {} runs per figure, {} s per phase, {} s warm-up, {} clients",
        settings.runs,
        format_value(settings.phase.as_secs_f64()),
        format_value(settings.warmup.as_secs_f64()),
        settings.clients
    );
    println!();
    let print = |table: Table| println!("{table}");
    let levels: &[usize] = if settings.quick {
        &suite::SCALE_ROOMS_QUICK
    } else {
        &suite::SCALE_ROOMS_FULL
    };
    match which {
        Suite::All => {
            let (ceiling, samples) = suite::measure_ceiling_samples(&exe, settings)?;
            print(ceiling);
            let measured = suite::measure_levels(&exe, settings, levels)?;
            if let Some(level) = measured.iter().find(|l| l.rooms == suite::HUB_ROOMS) {
                print(suite::hub_table(level, &samples)?);
            }
            print(suite::scale_table(&measured)?);
            print(suite::measure_mls(settings)?);
        }
        Suite::Ceiling => print(suite::measure_ceiling(&exe, settings)?),
        Suite::Hub => {
            let (ceiling, samples) = suite::measure_ceiling_samples(&exe, settings)?;
            print(ceiling);
            let measured = suite::measure_levels(&exe, settings, &[suite::HUB_ROOMS])?;
            for level in &measured {
                print(suite::hub_table(level, &samples)?);
            }
        }
        Suite::Scale => print(suite::scale_table(&suite::measure_levels(
            &exe, settings, levels,
        )?)?),
        Suite::Mls => print(suite::measure_mls(settings)?),
    }
    Ok(())
}
