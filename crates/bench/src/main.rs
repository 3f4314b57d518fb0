//! `mimi-bench`: prints the benchmark figures as Markdown tables.
//!
//! ```text
//! mimi-bench [all | ceiling | hub | scale | mls] [--quick] [--runs N] [--seconds S] [--clients N]
//!            [--rooms N,N,...] [--storage redb|redb-unjournaled|postgres | --postgres]
//! mimi-bench serve-ceiling DIR NAME     (the ceiling server process the harness starts)
//! ```
//!
//! `all` (the default) prints every figure; `hub` prints the ceiling and the hub figures
//! (the ratio needs both), `scale` and `mls` their own. The hub and scale figures need the
//! `mimi-hub` binary (beside this one, built first under `cargo run`, or `$MIMI_HUB_BIN`).
//! `--rooms` replaces the scale suite's room counts (ascending; each level adds rooms to
//! the one before), for example `--rooms 1,1000,100000`.
//!
//! `all` also measures the hub figures with the providers on PostgreSQL (a private server
//! the benchmark starts; [`mimi_bench::pg`]) and prints them beside redb's, or says that
//! PostgreSQL is not installed (a failure with `MIMI_REQUIRE_POSTGRES=1`, as in CI). `hub --storage postgres` (or `--postgres`) prints the hub
//! figures on PostgreSQL only; without PostgreSQL it says so in one line and exits with
//! [`EXIT_NO_POSTGRES`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use mimi_bench::hub::{BenchStorage, HubBenchError};
use mimi_bench::machine::Machine;
use mimi_bench::on_postgres;
use mimi_bench::pg::PgError;
use mimi_bench::suite::{self, BenchError, SERVE_CEILING_COMMAND, Settings};
use mimi_bench::{Table, figure::format_value};

const USAGE: &str = "usage: mimi-bench [all | ceiling | hub | hub06 | scale | mls] [--quick] \
[--runs N] [--seconds S] [--clients N] [--rooms N,N,...] [--storage redb|redb-unjournaled|postgres | --postgres] \
[--haven PATH (hub06)]";

/// The exit code of `hub --storage postgres` without PostgreSQL.
const EXIT_NO_POSTGRES: u8 = 3;

/// The most rooms `--rooms` may ask for.
const MAX_ROOMS: usize = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Suite {
    All,
    Ceiling,
    Hub,
    Hub06,
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
    let parsed = match parse(&args) {
        Ok(parsed) => parsed,
        Err(message) => return usage(&message),
    };
    let result = run(
        parsed.which,
        &parsed.settings,
        parsed.rooms.as_deref(),
        parsed.storage,
        parsed.haven.as_deref(),
    );
    match result {
        Err(error) if on_postgres::is_not_installed(&error) => {
            eprintln!("mimi-bench: {error}");
            ExitCode::from(EXIT_NO_POSTGRES)
        }
        result => finish(result),
    }
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

/// What the command line asks for.
struct Args {
    which: Suite,
    settings: Settings,
    /// `--rooms`: the scale suite's room counts instead of the defaults.
    rooms: Option<Vec<usize>>,
    /// `--storage`: where the providers of `hub` keep their state.
    storage: BenchStorage,
    haven: Option<PathBuf>,
}

/// Room counts: positive, ascending, at most [`MAX_ROOMS`].
fn parse_rooms(value: &str) -> Result<Vec<usize>, String> {
    let bad = || format!("--rooms needs ascending counts from 1 to {MAX_ROOMS}, got {value:?}");
    let rooms = value
        .split(',')
        .map(|n| {
            n.trim()
                .replace('_', "")
                .parse::<usize>()
                .map_err(|_| bad())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let ok = !rooms.is_empty()
        && rooms.iter().all(|&n| (1..=MAX_ROOMS).contains(&n))
        && rooms.windows(2).all(|w| w[0] < w[1]);
    if ok { Ok(rooms) } else { Err(bad()) }
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut rooms = None;
    let mut storage = BenchStorage::Redb;
    let mut haven = None;
    let mut which = Suite::All;
    let mut settings = Settings::FULL;
    let mut overrides: Vec<(&str, &str)> = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "all" => which = Suite::All,
            "ceiling" => which = Suite::Ceiling,
            "hub" => which = Suite::Hub,
            "hub06" => which = Suite::Hub06,
            "scale" => which = Suite::Scale,
            "mls" => which = Suite::Mls,
            "--quick" => settings = Settings::QUICK,
            "--postgres" => storage = BenchStorage::Postgres,
            "--storage" => {
                storage = match rest.next().map(String::as_str) {
                    Some("redb") => BenchStorage::Redb,
                    Some("redb-unjournaled") => BenchStorage::RedbUnjournaled,
                    Some("postgres") => BenchStorage::Postgres,
                    other => {
                        return Err(format!(
                            "--storage needs redb, redb-unjournaled or postgres, got {other:?}"
                        ));
                    }
                };
            }
            "--haven" => {
                haven = Some(PathBuf::from(rest.next().ok_or("--haven needs a path")?));
            }
            "--rooms" => {
                let value = rest.next().ok_or("--rooms needs a value")?;
                rooms = Some(parse_rooms(value)?);
            }
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
    if storage == BenchStorage::Postgres && which != Suite::Hub {
        return Err("--storage postgres goes with `hub` (`all` measures both storages)".into());
    }
    Ok(Args {
        which,
        settings,
        rooms,
        storage,
        haven,
    })
}

fn run(
    which: Suite,
    settings: &Settings,
    rooms: Option<&[usize]>,
    storage: BenchStorage,
    haven: Option<&std::path::Path>,
) -> Result<(), BenchError> {
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
    let levels: &[usize] = match rooms {
        Some(rooms) => rooms,
        None if settings.quick => &suite::SCALE_ROOMS_QUICK,
        None => &suite::SCALE_ROOMS_FULL,
    };
    match which {
        Suite::All => {
            let (ceiling, samples) = suite::measure_ceiling_samples(&exe, settings)?;
            print(ceiling);
            let measured = suite::measure_levels(&exe, settings, levels)?;
            if let Some(level) = measured.iter().find(|l| l.rooms == suite::HUB_ROOMS) {
                print(suite::hub_table(level, &samples)?);
                let postgres = on_postgres::measure_hub(&exe, settings);
                // A missing PostgreSQL is a row of the table (unless MIMI_REQUIRE_POSTGRES=1);
                // a failed run fails the bench.
                if let Err(error) = &postgres
                    && (!on_postgres::is_not_installed(error) || mimi_bench::pg::required())
                {
                    return postgres.map(drop);
                }
                print(on_postgres::comparison_table(level, postgres.as_ref())?);
            }
            print(suite::scale_table(&measured)?);
            let ceiling = ceiling_median(&samples);
            println!(
                "{}",
                mimi_bench::hub06::run(&exe, settings, haven, ceiling)?
            );
            print(suite::measure_mls(settings)?);
        }
        Suite::Ceiling => print(suite::measure_ceiling(&exe, settings)?),
        Suite::Hub => {
            if storage == BenchStorage::Postgres && mimi_bench::pg::find_binaries().is_none() {
                return Err(HubBenchError::Postgres(PgError::NotInstalled).into());
            }
            let (ceiling, samples) = suite::measure_ceiling_samples(&exe, settings)?;
            print(ceiling);
            let measured = suite::measure_levels_on(&exe, settings, &[suite::HUB_ROOMS], storage)?;
            for level in &measured {
                print(suite::hub_table(level, &samples)?);
                if storage == BenchStorage::Postgres {
                    print(on_postgres::postgres_table(level)?);
                }
            }
        }
        Suite::Hub06 => {
            let (ceiling, samples) = suite::measure_ceiling_samples(&exe, settings)?;
            print(ceiling);
            let ceiling = ceiling_median(&samples);
            println!(
                "{}",
                mimi_bench::hub06::run(&exe, settings, haven, ceiling)?
            );
        }
        Suite::Scale => print(suite::scale_table(&suite::measure_levels(
            &exe, settings, levels,
        )?)?),
        Suite::Mls => print(suite::measure_mls(settings)?),
    }
    Ok(())
}

/// The ceiling's median throughput at saturation (the -06 table's ratio).
fn ceiling_median(samples: &[suite::CeilingSample]) -> Option<f64> {
    let mut ceilings: Vec<f64> = samples
        .iter()
        .map(|s| s.point.saturation_throughput)
        .collect();
    ceilings.sort_by(f64::total_cmp);
    ceilings.get(ceilings.len() / 2).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_counts_are_positive_ascending_and_bounded() {
        assert_eq!(parse_rooms("1,1000,100_000"), Ok(vec![1, 1_000, 100_000]));
        for bad in ["", "0", "10,5", "1,1", "x", "2000000", "1,,2"] {
            assert!(parse_rooms(bad).is_err(), "{bad:?}");
        }
        let args: Vec<String> = ["scale", "--quick", "--rooms", "1,10"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let parsed = parse(&args).unwrap();
        assert_eq!(parsed.which, Suite::Scale);
        assert!(parsed.settings.quick);
        assert_eq!(parsed.rooms, Some(vec![1, 10]));
    }

    #[test]
    fn storage_is_redb_unless_asked_and_postgres_goes_with_hub() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(parse(&args(&["hub"])).unwrap().storage, BenchStorage::Redb);
        for asked in [
            &["hub", "--storage", "postgres"][..],
            &["hub", "--postgres"],
        ] {
            assert_eq!(parse(&args(asked)).unwrap().storage, BenchStorage::Postgres);
        }
        assert_eq!(
            parse(&args(&["hub", "--storage", "redb"])).unwrap().storage,
            BenchStorage::Redb
        );
        for bad in [
            &["hub", "--storage"][..],
            &["hub", "--storage", "sqlite"],
            &["scale", "--postgres"],
        ] {
            assert!(parse(&args(bad)).is_err(), "{bad:?}");
        }
    }
}
