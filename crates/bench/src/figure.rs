//! Figures and the table they are printed in.
//!
//! A [`Figure`] is one measured quantity summarised over several runs: the median, with the
//! smallest and largest run beside it, so that a noisy shared machine shows as a wide
//! min–max spread instead of a silently wrong number. A [`Table`] lays out figures (and the
//! rows not measured yet) with the target each one is held against.

use std::fmt;

/// Why samples could not be summarised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FigureError {
    /// No run produced a sample.
    #[error("figure {0:?} has no samples")]
    NoSamples(String),
    /// A sample is NaN or infinite.
    #[error("figure {0:?} has a sample that is not a finite number")]
    NotFinite(String),
}

/// One measured quantity over several runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// What was measured, for example `ceiling: requests/s at saturation`.
    pub name: String,
    /// The unit of `median`, `min` and `max`, for example `req/s` or `ms`.
    pub unit: String,
    /// The median over the runs (the mean of the two middle runs for an even count).
    pub median: f64,
    /// The smallest run.
    pub min: f64,
    /// The largest run.
    pub max: f64,
    /// How many runs were summarised.
    pub runs: usize,
}

impl Figure {
    /// Summarise one sample per run.
    pub fn from_samples(
        name: impl Into<String>,
        unit: impl Into<String>,
        samples: &[f64],
    ) -> Result<Self, FigureError> {
        let name = name.into();
        if samples.is_empty() {
            return Err(FigureError::NoSamples(name));
        }
        if samples.iter().any(|s| !s.is_finite()) {
            return Err(FigureError::NotFinite(name));
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Ok(Figure {
            name,
            unit: unit.into(),
            median,
            min: sorted[0],
            max: sorted[n - 1],
            runs: n,
        })
    }
}

/// One line of a [`Table`].
#[derive(Debug, Clone, PartialEq)]
pub enum Row {
    /// A measured figure, with the target it is held against (if any).
    Measured {
        /// The figure.
        figure: Figure,
        /// The target, in words (for example `>= 30% of the ceiling`).
        target: Option<String>,
    },
    /// A figure this harness does not measure yet, and why.
    NotYetMeasured {
        /// What will be measured.
        name: String,
        /// Its unit.
        unit: String,
        /// The target it will be held against (if any).
        target: Option<String>,
        /// Why it is not measured yet.
        reason: String,
    },
}

/// A titled table of figures, printed with aligned columns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    title: String,
    rows: Vec<Row>,
}

impl Table {
    /// An empty table.
    pub fn new(title: impl Into<String>) -> Self {
        Table {
            title: title.into(),
            rows: Vec::new(),
        }
    }

    /// Add a measured figure.
    pub fn measured(&mut self, figure: Figure, target: Option<&str>) {
        self.rows.push(Row::Measured {
            figure,
            target: target.map(str::to_owned),
        });
    }

    /// Add a row for a figure that is not measured yet.
    pub fn not_yet_measured(&mut self, name: &str, unit: &str, target: Option<&str>, reason: &str) {
        self.rows.push(Row::NotYetMeasured {
            name: name.to_owned(),
            unit: unit.to_owned(),
            target: target.map(str::to_owned),
            reason: reason.to_owned(),
        });
    }

    /// The rows, in order.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// Append every row of `other`.
    pub fn extend(&mut self, other: Table) {
        self.rows.extend(other.rows);
    }
}

/// A number with a precision that suits its size: three significant digits for small
/// values, whole numbers from 1,000 up.
pub fn format_value(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 1000.0 {
        format!("{value:.0}")
    } else if magnitude >= 100.0 {
        format!("{value:.1}")
    } else if magnitude >= 10.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

const HEADERS: [&str; 7] = ["figure", "unit", "median", "min", "max", "runs", "target"];

impl fmt::Display for Table {
    /// A Markdown table, so that a run can be pasted into `docs/performance.md` as is.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cells: Vec<[String; 7]> = self
            .rows
            .iter()
            .map(|row| match row {
                Row::Measured { figure, target } => [
                    figure.name.clone(),
                    figure.unit.clone(),
                    format_value(figure.median),
                    format_value(figure.min),
                    format_value(figure.max),
                    figure.runs.to_string(),
                    target.clone().unwrap_or_default(),
                ],
                Row::NotYetMeasured {
                    name,
                    unit,
                    target,
                    reason,
                } => [
                    name.clone(),
                    unit.clone(),
                    format!("not yet measured ({reason})"),
                    String::new(),
                    String::new(),
                    String::new(),
                    target.clone().unwrap_or_default(),
                ],
            })
            .collect();
        let mut widths = HEADERS.map(str::len);
        for row in &cells {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        writeln!(f, "### {}", self.title)?;
        writeln!(f)?;
        write_line(f, &HEADERS.map(str::to_owned), &widths)?;
        write_line(f, &widths.map(|w| "-".repeat(w)), &widths)?;
        for row in &cells {
            write_line(f, row, &widths)?;
        }
        Ok(())
    }
}

/// Column 0, 1 and 6 are text (left-aligned); the numbers are right-aligned.
fn write_line(f: &mut fmt::Formatter<'_>, cells: &[String; 7], widths: &[usize; 7]) -> fmt::Result {
    write!(f, "|")?;
    for (column, (cell, width)) in cells.iter().zip(widths).enumerate() {
        if matches!(column, 0 | 1 | 6) {
            write!(f, " {cell:<width$} |")?;
        } else {
            write!(f, " {cell:>width$} |")?;
        }
    }
    writeln!(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_count_takes_the_middle_run() {
        let figure = Figure::from_samples("x", "req/s", &[5.0, 1.0, 3.0]).unwrap();
        assert_eq!(
            figure,
            Figure {
                name: "x".into(),
                unit: "req/s".into(),
                median: 3.0,
                min: 1.0,
                max: 5.0,
                runs: 3,
            }
        );
    }

    #[test]
    fn even_count_averages_the_two_middle_runs() {
        let figure = Figure::from_samples("x", "ms", &[4.0, 1.0, 2.0, 10.0]).unwrap();
        assert_eq!((figure.median, figure.min, figure.max), (3.0, 1.0, 10.0));
        assert_eq!(figure.runs, 4);
    }

    #[test]
    fn no_samples_and_nan_are_refused() {
        assert_eq!(
            Figure::from_samples("x", "ms", &[]),
            Err(FigureError::NoSamples("x".into()))
        );
        assert_eq!(
            Figure::from_samples("y", "ms", &[1.0, f64::NAN]),
            Err(FigureError::NotFinite("y".into()))
        );
    }

    #[test]
    fn values_get_a_precision_that_suits_their_size() {
        assert_eq!(format_value(12345.678), "12346");
        assert_eq!(format_value(123.456), "123.5");
        assert_eq!(format_value(12.3456), "12.35");
        assert_eq!(format_value(1.23456), "1.235");
    }

    #[test]
    fn table_renders_as_aligned_markdown() {
        let mut table = Table::new("t");
        table.measured(
            Figure::from_samples("rate", "req/s", &[1000.0, 2000.0, 3000.0]).unwrap(),
            Some(">= 1"),
        );
        table.not_yet_measured("hub", "msg/s", None, "later");
        let expected = "### t\n\n\
| figure | unit  |                   median |  min |  max | runs | target |\n\
| ------ | ----- | ------------------------ | ---- | ---- | ---- | ------ |\n\
| rate   | req/s |                     2000 | 1000 | 3000 |    3 | >= 1   |\n\
| hub    | msg/s | not yet measured (later) |      |      |      |        |\n";
        assert_eq!(table.to_string(), expected);
    }
}
