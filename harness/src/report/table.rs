//! A table's cells, formatted one way for every table the harness writes (the report's
//! comparison tables, `flashsale ceiling`'s table): a [`Figure`] over runs (their mean or their
//! median, with the spread min–max) shown in a [`Unit`] by [`cell`].

use crate::rundata::k6::percentile;
use serde::Serialize;

/// How a number is shown: scaled, rounded, and followed by its unit's name.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Unit {
    scale: f64,
    digits: Digits,
    suffix: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Digits {
    /// Two decimals below 10, one below 100, none from 100 on: about three significant digits.
    Significant,
    /// Always this many decimals.
    Fixed(usize),
}

impl Unit {
    /// About three significant digits, then `suffix` (e.g. `" ms"`; `""` for a bare count).
    pub const fn significant(suffix: &'static str) -> Unit {
        Unit {
            scale: 1.0,
            digits: Digits::Significant,
            suffix,
        }
    }

    /// `decimals` decimals, then `suffix`.
    pub const fn fixed(decimals: usize, suffix: &'static str) -> Unit {
        Unit {
            scale: 1.0,
            digits: Digits::Fixed(decimals),
            suffix,
        }
    }

    /// The value times `scale` first (a share 0..1 shown in %: `times(100.0)`).
    pub const fn times(self, scale: f64) -> Unit {
        Unit { scale, ..self }
    }

    /// `v` with its unit: `42.0 ms`.
    pub fn format(self, v: f64) -> String {
        format!("{}{}", self.number(v), self.suffix)
    }

    /// `v` without its unit: `42.0`.
    pub fn number(self, v: f64) -> String {
        let v = v * self.scale;
        let decimals = match self.digits {
            Digits::Fixed(n) => n,
            Digits::Significant if v.abs() >= 100.0 => 0,
            Digits::Significant if v.abs() >= 10.0 => 1,
            Digits::Significant => 2,
        };
        format!("{v:.decimals$}")
    }
}

/// Which figure of its runs a [`Figure`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Stat {
    Mean,
    /// An even count gets the mean of the middle two.
    Median,
}

/// A number over several runs: their mean or their median, and their spread.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Figure {
    pub stat: Stat,
    pub value: f64,
    pub min: f64,
    pub max: f64,
    /// How many runs had a value.
    pub runs: usize,
}

impl Figure {
    /// The mean of the finite values; `None` when there is none. Values may be `f64` or
    /// `Option<f64>` (a run without the value).
    pub fn mean<V: Into<Option<f64>>>(values: impl IntoIterator<Item = V>) -> Option<Figure> {
        Figure::of(Stat::Mean, values)
    }

    /// The median of the finite values; `None` when there is none.
    pub fn median<V: Into<Option<f64>>>(values: impl IntoIterator<Item = V>) -> Option<Figure> {
        Figure::of(Stat::Median, values)
    }

    fn of<V: Into<Option<f64>>>(stat: Stat, values: impl IntoIterator<Item = V>) -> Option<Figure> {
        let mut values: Vec<f64> = values
            .into_iter()
            .filter_map(Into::into)
            .filter(|v| v.is_finite())
            .collect();
        let runs = values.len();
        let value = match stat {
            Stat::Mean => (runs > 0).then(|| values.iter().sum::<f64>() / runs as f64)?,
            // The report's percentile interpolates, so an even count gets the middle two's mean.
            Stat::Median => percentile(&mut values, 50.0)?,
        };
        Some(Figure {
            stat,
            value,
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            runs,
        })
    }

    /// The two spreads share a value: a difference between them is no difference.
    pub fn overlaps(&self, other: &Figure) -> bool {
        self.min <= other.max && other.min <= self.max
    }
}

/// A figure in `unit`: `n/a` without one, the value alone from one run; from several, the
/// value and its spread: a mean's in parentheses in bare numbers (`42.0 ms (40.0–44.0)`), a
/// median's in brackets with their unit (`100.0 ms [90.0 ms–110.0 ms]`).
pub fn cell(figure: Option<Figure>, unit: Unit) -> String {
    match figure {
        None => "n/a".into(),
        Some(f) if f.runs > 1 => match f.stat {
            Stat::Mean => format!(
                "{} ({}–{})",
                unit.format(f.value),
                unit.number(f.min),
                unit.number(f.max)
            ),
            Stat::Median => format!(
                "{} [{}–{}]",
                unit.format(f.value),
                unit.format(f.min),
                unit.format(f.max)
            ),
        },
        Some(f) => unit.format(f.value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spread_is_the_mean_with_min_and_max() {
        let f = Figure::mean([1.0, 3.0, 2.0]).expect("values");
        assert_eq!((f.value, f.min, f.max, f.runs), (2.0, 1.0, 3.0, 3));
        assert_eq!(Figure::mean(Vec::<f64>::new()), None);
        assert_eq!(Figure::mean([f64::NAN]), None);
    }

    #[test]
    fn a_median_is_the_middle_run_or_the_mean_of_the_middle_two() {
        let odd = Figure::median([Some(3.0), Some(1.0), None, Some(2.0)]).expect("values");
        assert_eq!((odd.value, odd.min, odd.max), (2.0, 1.0, 3.0));
        let even = Figure::median([Some(4.0), Some(1.0), Some(3.0), Some(2.0)]).expect("values");
        assert_eq!((even.value, even.min, even.max), (2.5, 1.0, 4.0));
        assert_eq!(Figure::median([None, Some(f64::NAN)]), None);
    }

    #[test]
    fn a_mean_shows_its_spread_bare_and_a_median_its_range_with_units() {
        assert_eq!(
            cell(Figure::mean([1.0, 3.0]), Unit::significant(" ms")),
            "2.00 ms (1.00–3.00)"
        );
        assert_eq!(
            cell(Figure::mean([150.0]), Unit::fixed(1, " ms")),
            "150.0 ms"
        );
        assert_eq!(
            cell(Figure::median([100.0, 90.0, 110.0]), Unit::fixed(1, " ms")),
            "100.0 ms [90.0 ms–110.0 ms]"
        );
    }
}
