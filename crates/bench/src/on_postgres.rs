//! The hub figures on PostgreSQL beside redb's: the same three providers, rooms, load and
//! probe as [`crate::hub`], each provider on its own database of one private PostgreSQL
//! server ([`crate::pg::PgServer`]) instead of its own redb file.
//!
//! The providers' CPU and bytes written are their processes' (as on redb); the server's are
//! all its processes' together (the postmaster, the backends of the three providers'
//! connections, the WAL writer, checkpointer and background writer), per message accepted,
//! over the same time. On redb the storage's work is inside the provider's process, so the
//! comparable cost is a provider's process on redb against the providers' processes plus
//! the server on PostgreSQL: the table gives both.

use std::path::Path;

use crate::figure::{Figure, FigureError, Table};
use crate::hub::{BenchStorage, HubBenchError, HubPoint};
use crate::pg::{NOT_INSTALLED, PgError};
use crate::suite::{BenchError, HUB_ROOMS, ScaleLevel, Settings};

/// The hub level ([`HUB_ROOMS`] rooms) with the providers on PostgreSQL.
pub fn measure_hub(exe: &Path, settings: &Settings) -> Result<ScaleLevel, BenchError> {
    let mut levels =
        crate::suite::measure_levels_on(exe, settings, &[HUB_ROOMS], BenchStorage::Postgres)?;
    levels
        .pop()
        .ok_or_else(|| HubBenchError::Unexpected("no level was measured".into()).into())
}

/// Whether `error` is PostgreSQL missing (rather than a failure).
pub fn is_not_installed(error: &BenchError) -> bool {
    matches!(
        error,
        BenchError::Hub(HubBenchError::Postgres(PgError::NotInstalled))
    )
}

/// A figure of each run's `f` over its points.
fn figure(
    name: String,
    unit: &str,
    points: &[HubPoint],
    f: impl Fn(&HubPoint) -> f64,
) -> Result<Figure, FigureError> {
    Figure::from_samples(name, unit, &points.iter().map(f).collect::<Vec<_>>())
}

/// Run `i` on PostgreSQL over run `i` on redb.
fn ratio(
    name: &str,
    redb: &[HubPoint],
    postgres: &[HubPoint],
    f: impl Fn(&HubPoint) -> f64,
) -> Result<Figure, FigureError> {
    let ratios: Vec<f64> = postgres
        .iter()
        .zip(redb)
        .map(|(p, r)| f(p) / f(r))
        .collect();
    Figure::from_samples(name, "ratio", &ratios)
}

/// All three providers' processes' CPU per message, and the server's if any.
fn total_cpu(p: &HubPoint) -> f64 {
    p.costs.iter().map(|c| c.cpu_micros).sum::<f64>() + p.database.map_or(0.0, |d| d.cpu_micros)
}

/// All three providers' processes' bytes written per message, and the server's if any.
fn total_written(p: &HubPoint) -> f64 {
    p.costs.iter().map(|c| c.write_bytes).sum::<f64>() + p.database.map_or(0.0, |d| d.write_bytes)
}

/// The rows of one storage, named `<label>: ...`: accepted and delivered at saturation, p99
/// at half load, the hub process's CPU and bytes written per message, the server's (if any),
/// and the total over the three providers and the server.
pub fn storage_rows(table: &mut Table, label: &str, p: &[HubPoint]) -> Result<(), FigureError> {
    table.measured(
        figure(
            format!("{label}: accepted at the hub, saturation"),
            "msg/s",
            p,
            |x| x.saturation.accepted,
        )?,
        None,
    );
    table.measured(
        figure(
            format!("{label}: delivered at the slower follower, saturation"),
            "msg/s",
            p,
            |x| x.saturation.delivered,
        )?,
        None,
    );
    table.measured(
        figure(
            format!("{label}: p99 submit to follower, half load"),
            "ms",
            p,
            |x| x.half.latency.p99.as_secs_f64() * 1000.0,
        )?,
        Some(crate::suite::TARGET_P99_HALF_LOAD),
    );
    table.measured(
        figure(
            format!("{label}: A (hub) process CPU per message"),
            "µs",
            p,
            |x| x.costs[0].cpu_micros,
        )?,
        None,
    );
    table.measured(
        figure(
            format!("{label}: A (hub) process written per message"),
            "kB",
            p,
            |x| x.costs[0].write_bytes / 1000.0,
        )?,
        None,
    );
    if p.iter().all(|x| x.database.is_some()) {
        table.measured(
            figure(
                format!("{label}: server processes CPU per message (3 databases)"),
                "µs",
                p,
                |x| x.database.map_or(0.0, |d| d.cpu_micros),
            )?,
            None,
        );
        table.measured(
            figure(
                format!("{label}: server processes written per message (3 databases)"),
                "kB",
                p,
                |x| x.database.map_or(0.0, |d| d.write_bytes / 1000.0),
            )?,
            None,
        );
    }
    table.measured(
        figure(
            format!("{label}: CPU per message, 3 providers + server"),
            "µs",
            p,
            total_cpu,
        )?,
        None,
    );
    table.measured(
        figure(
            format!("{label}: written per message, 3 providers + server"),
            "kB",
            p,
            |x| total_written(x) / 1000.0,
        )?,
        None,
    );
    Ok(())
}

/// One table: the redb level's figures, then PostgreSQL's (or why there are none), then the
/// ratios.
pub fn comparison_table(
    redb: &ScaleLevel,
    postgres: Result<&ScaleLevel, &BenchError>,
) -> Result<Table, BenchError> {
    let mut table = Table::new(format!(
        "Storage: the hub figures ({} rooms, 3 providers) on redb and on PostgreSQL (a database per provider on one local server)",
        redb.rooms
    ));
    storage_rows(&mut table, "redb", &redb.points)?;
    match postgres {
        Ok(level) => {
            storage_rows(&mut table, "PostgreSQL", &level.points)?;
            let (r, p) = (&redb.points, &level.points);
            table.measured(
                ratio("PostgreSQL / redb: accepted at the hub", r, p, |x| {
                    x.saturation.accepted
                })?,
                None,
            );
            table.measured(
                ratio("PostgreSQL / redb: delivered", r, p, |x| {
                    x.saturation.delivered
                })?,
                None,
            );
            table.measured(
                ratio(
                    "PostgreSQL / redb: CPU per message, 3 providers + server",
                    r,
                    p,
                    total_cpu,
                )?,
                None,
            );
            table.measured(
                ratio(
                    "PostgreSQL / redb: written per message, 3 providers + server",
                    r,
                    p,
                    total_written,
                )?,
                None,
            );
        }
        Err(error) => {
            let reason = if is_not_installed(error) {
                NOT_INSTALLED.to_owned()
            } else {
                format!("the PostgreSQL run failed: {error}")
            };
            table.not_yet_measured("PostgreSQL: every figure", "", None, &reason);
        }
    }
    Ok(table)
}

/// The PostgreSQL rows alone (`mimi-bench hub --storage postgres`).
pub fn postgres_table(level: &ScaleLevel) -> Result<Table, BenchError> {
    let mut table = Table::new(format!(
        "Storage: the hub figures ({} rooms, 3 providers) on PostgreSQL (a database per provider on one local server)",
        level.rooms
    ));
    storage_rows(&mut table, "PostgreSQL", &level.points)?;
    Ok(table)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::figure::Row;
    use crate::hub::HubRun;
    use crate::loadgen::LatencySummary;
    use crate::process::PerUnit;

    fn level(accepted: f64, database: Option<PerUnit>) -> ScaleLevel {
        let run = HubRun {
            accepted,
            delivered: accepted,
            latency: LatencySummary {
                p99: Duration::from_millis(10),
                ..LatencySummary::default()
            },
            probes: 1,
            messages: 1,
        };
        let cost = PerUnit {
            cpu_micros: 100.0,
            write_bytes: 1000.0,
            write_syscalls: 1.0,
        };
        ScaleLevel {
            rooms: HUB_ROOMS,
            points: vec![HubPoint {
                saturation: run,
                half: run,
                costs: [cost; 3],
                database,
            }],
            creation_rate: 1.0,
            peak_rss: 0,
            storage_per_room: 0.0,
        }
    }

    fn find<'a>(table: &'a Table, name: &str) -> &'a Row {
        table
            .rows()
            .iter()
            .find(|r| match r {
                Row::Measured { figure, .. } => figure.name == name,
                Row::NotYetMeasured { name: n, .. } => n == name,
            })
            .unwrap_or_else(|| panic!("no row {name:?} in\n{table}"))
    }

    fn median(row: &Row) -> f64 {
        match row {
            Row::Measured { figure, .. } => figure.median,
            other => panic!("not measured: {other:?}"),
        }
    }

    /// Without PostgreSQL the table still has redb's rows, and one row saying why there are
    /// no PostgreSQL figures.
    #[test]
    fn without_postgresql_the_table_says_so() {
        let missing: BenchError = HubBenchError::Postgres(PgError::NotInstalled).into();
        assert!(is_not_installed(&missing));
        let table = comparison_table(&level(2000.0, None), Err(&missing)).unwrap();
        assert_eq!(
            median(find(&table, "redb: accepted at the hub, saturation")),
            2000.0
        );
        assert!(table.to_string().contains("PostgreSQL not installed"));
        let failed: BenchError = HubBenchError::Postgres(PgError::Failed("x".into())).into();
        assert!(!is_not_installed(&failed));
    }

    /// The server's cost is added to the three providers', and the ratios are PostgreSQL's
    /// over redb's.
    #[test]
    fn the_server_counts_in_the_totals_and_the_ratios() {
        let server = PerUnit {
            cpu_micros: 600.0,
            write_bytes: 3000.0,
            write_syscalls: 0.0,
        };
        let redb = level(2000.0, None);
        let postgres = level(500.0, Some(server));
        let table = comparison_table(&redb, Ok(&postgres)).unwrap();
        let m = |name: &str| median(find(&table, name));
        assert_eq!(m("redb: CPU per message, 3 providers + server"), 300.0);
        assert_eq!(
            m("PostgreSQL: CPU per message, 3 providers + server"),
            900.0
        );
        assert_eq!(
            m("PostgreSQL: written per message, 3 providers + server"),
            6.0
        );
        assert_eq!(
            m("PostgreSQL: server processes CPU per message (3 databases)"),
            600.0
        );
        assert_eq!(m("PostgreSQL / redb: accepted at the hub"), 0.25);
        assert_eq!(
            m("PostgreSQL / redb: CPU per message, 3 providers + server"),
            3.0
        );
    }
}
