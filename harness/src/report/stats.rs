//! Which mode wins a metric: the better mean over the counted runs ([`Figure`]), unless the
//! two modes' min–max ranges overlap: a difference inside the spread is no difference, a tie.

use super::table::Figure;
use serde::Serialize;

/// Which way a metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Better {
    Lower,
    Higher,
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

pub fn winner(first: Option<Figure>, second: Option<Figure>, better: Better) -> Winner {
    let (Some(a), Some(b)) = (first, second) else {
        return Winner::NotAvailable;
    };
    if a.overlaps(&b) {
        return Winner::Tie;
    }
    let first_better = match better {
        Better::Lower => a.value < b.value,
        Better::Higher => a.value > b.value,
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

    fn s(values: &[f64]) -> Option<Figure> {
        Figure::mean(values.iter().copied())
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
