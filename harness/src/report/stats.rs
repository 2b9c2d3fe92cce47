//! The comparison's arithmetic: a metric's mean over the counted runs with its min–max
//! spread, and which mode wins it. A difference inside the spread (the two modes' ranges
//! overlap) is no difference: a tie.

use serde::Serialize;

/// Which way a metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Better {
    Lower,
    Higher,
}

/// A metric over several runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    pub mean: f64,
    pub min: f64,
    pub max: f64,
    /// How many runs had a value.
    pub n: usize,
}

impl Spread {
    /// `None` when no run had a value.
    pub fn of(values: &[f64]) -> Option<Spread> {
        let values: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        if values.is_empty() {
            return None;
        }
        let n = values.len();
        Some(Spread {
            mean: values.iter().sum::<f64>() / n as f64,
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            n,
        })
    }

    pub fn overlaps(&self, other: &Spread) -> bool {
        self.min <= other.max && other.min <= self.max
    }
}

/// The outcome of one row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Winner {
    /// The first mode (sync) is better beyond the spread.
    First,
    /// The second mode (async) is better beyond the spread.
    Second,
    /// The ranges overlap.
    Tie,
    /// A mode has no value.
    NotAvailable,
}

pub fn winner(first: Option<Spread>, second: Option<Spread>, better: Better) -> Winner {
    let (Some(a), Some(b)) = (first, second) else {
        return Winner::NotAvailable;
    };
    if a.overlaps(&b) {
        return Winner::Tie;
    }
    let first_better = match better {
        Better::Lower => a.mean < b.mean,
        Better::Higher => a.mean > b.mean,
    };
    if first_better {
        Winner::First
    } else {
        Winner::Second
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(values: &[f64]) -> Option<Spread> {
        Spread::of(values)
    }

    #[test]
    fn the_spread_is_the_mean_with_min_and_max() {
        let sp = Spread::of(&[1.0, 3.0, 2.0]).expect("values");
        assert_eq!((sp.mean, sp.min, sp.max, sp.n), (2.0, 1.0, 3.0, 3));
        assert_eq!(Spread::of(&[]), None);
        assert_eq!(Spread::of(&[f64::NAN]), None);
    }

    #[test]
    fn lower_wins_for_costs_and_higher_wins_for_throughput() {
        assert_eq!(
            winner(s(&[10.0, 11.0]), s(&[20.0, 21.0]), Better::Lower),
            Winner::First
        );
        assert_eq!(
            winner(s(&[10.0, 11.0]), s(&[20.0, 21.0]), Better::Higher),
            Winner::Second
        );
        assert_eq!(
            winner(s(&[30.0]), s(&[20.0]), Better::Lower),
            Winner::Second
        );
    }

    #[test]
    fn overlapping_ranges_are_a_tie_and_a_missing_mode_is_not_available() {
        assert_eq!(
            winner(s(&[10.0, 15.0]), s(&[14.0, 20.0]), Better::Lower),
            Winner::Tie
        );
        assert_eq!(winner(s(&[10.0]), s(&[10.0]), Better::Higher), Winner::Tie);
        assert_eq!(
            winner(s(&[10.0]), None, Better::Lower),
            Winner::NotAvailable
        );
        assert_eq!(winner(None, None, Better::Higher), Winner::NotAvailable);
    }
}
