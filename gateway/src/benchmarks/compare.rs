//! The rules of a comparison, with no I/O (DOMAIN.md, Quality and benchmarks: "per-inhabitant
//! normalisation; peer groups whose value is the unweighted mean of the members that reported,
//! with their count; every unit ranked per KPI (best quartile green, middle yellow, worst red,
//! missing grey)").
//!
//! - Rank: 1 for the best normalised value, the KPI's polarity respected; members tied share
//!   the best rank of the tie and the next rank skips (1, 2, 2, 4).
//! - Band: among the `n` members that reported, with `better` of them strictly better and
//!   `worse` strictly worse, GREEN when `4 x better <= n - 1`, else RED when
//!   `4 x worse <= n - 1`, else YELLOW; GREY without a value. Ties share a band.
//! - Statistics: median (mean of the two middle values for an even count), unweighted mean,
//!   best and worst, over the members that reported.

use std::cmp::Ordering;

use unione_quality::domain::Polarity;

/// The band of a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Band {
    /// Best quartile.
    Green,
    /// Middle.
    Yellow,
    /// Worst quartile.
    Red,
    /// No value.
    Grey,
}

/// Where a value stands among the reported values of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placing {
    /// 1 for the best.
    pub rank: u32,
    /// The band.
    pub band: Band,
}

/// The group's statistics over the reported normalised values.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Statistics {
    /// Members that reported.
    pub reported: usize,
    /// Median, `None` when none reported.
    pub median: Option<f64>,
    /// Unweighted mean, `None` when none reported.
    pub mean: Option<f64>,
    /// Best value.
    pub best: Option<f64>,
    /// Worst value.
    pub worst: Option<f64>,
}

/// The reported values of a group, ordered best first, to place members against.
#[derive(Debug, Clone)]
pub struct Ranking {
    polarity: Polarity,
    /// Best first.
    sorted: Vec<f64>,
}

/// `a` compared with `b` in "best first" order: `Less` when `a` is better.
fn best_first(polarity: Polarity, a: f64, b: f64) -> Ordering {
    match polarity {
        Polarity::HigherIsBetter => b.total_cmp(&a),
        Polarity::LowerIsBetter => a.total_cmp(&b),
    }
}

impl Ranking {
    /// The ranking of `values` (normalised, finite) under `polarity`.
    pub fn new(polarity: Polarity, values: impl IntoIterator<Item = f64>) -> Self {
        let mut sorted: Vec<f64> = values.into_iter().collect();
        sorted.sort_by(|a, b| best_first(polarity, *a, *b));
        Self { polarity, sorted }
    }

    /// Members that reported.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// Whether none reported.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// How many reported values are strictly better and strictly worse than `value`.
    fn better_worse(&self, value: f64) -> (usize, usize) {
        let better = self
            .sorted
            .partition_point(|v| best_first(self.polarity, *v, value) == Ordering::Less);
        let not_worse = self
            .sorted
            .partition_point(|v| best_first(self.polarity, *v, value) != Ordering::Greater);
        (better, self.sorted.len() - not_worse)
    }

    /// The placing of a member of the group with `value` (one of the ranked values).
    pub fn place(&self, value: f64) -> Placing {
        let (better, worse) = self.better_worse(value);
        placing(better, worse, self.sorted.len())
    }

    /// The placing of a member outside the group with `value`, as if it were one more member:
    /// the group's own placings do not count it.
    pub fn place_outsider(&self, value: f64) -> Placing {
        let (better, worse) = self.better_worse(value);
        placing(better, worse, self.sorted.len() + 1)
    }

    /// The statistics of the reported values.
    pub fn statistics(&self) -> Statistics {
        let n = self.sorted.len();
        if n == 0 {
            return Statistics::default();
        }
        // The median does not depend on the direction of the order.
        let median = if n % 2 == 1 {
            self.sorted[n / 2]
        } else {
            (self.sorted[n / 2 - 1] + self.sorted[n / 2]) / 2.0
        };
        #[allow(clippy::cast_precision_loss)]
        let mean = self.sorted.iter().sum::<f64>() / n as f64;
        Statistics {
            reported: n,
            median: Some(median),
            mean: Some(mean),
            best: self.sorted.first().copied(),
            worst: self.sorted.last().copied(),
        }
    }
}

/// The rank and band of a member with `better` values strictly better and `worse` strictly
/// worse among `n` reported values (its own included).
fn placing(better: usize, worse: usize, n: usize) -> Placing {
    let band = if 4 * better < n {
        Band::Green
    } else if 4 * worse < n {
        Band::Red
    } else {
        Band::Yellow
    };
    Placing {
        rank: u32::try_from(better + 1).unwrap_or(u32::MAX),
        band,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placings(polarity: Polarity, values: &[f64]) -> Vec<(u32, Band)> {
        let ranking = Ranking::new(polarity, values.iter().copied());
        values
            .iter()
            .map(|v| {
                let p = ranking.place(*v);
                (p.rank, p.band)
            })
            .collect()
    }

    use Band::{Green as G, Red as R, Yellow as Y};

    /// The band rule written out: 4 x better <= n - 1 is green, 4 x worse <= n - 1 red.
    #[test]
    fn quartile_bands_by_group_size() {
        let up = Polarity::HigherIsBetter;
        assert_eq!(placings(up, &[5.0]), vec![(1, G)], "a lone reporter");
        assert_eq!(placings(up, &[5.0, 4.0]), vec![(1, G), (2, R)]);
        assert_eq!(placings(up, &[5.0, 4.0, 3.0]), vec![(1, G), (2, Y), (3, R)]);
        assert_eq!(
            placings(up, &[5.0, 4.0, 3.0, 2.0]),
            vec![(1, G), (2, Y), (3, Y), (4, R)]
        );
        assert_eq!(
            placings(up, &[5.0, 4.0, 3.0, 2.0, 1.0]),
            vec![(1, G), (2, G), (3, Y), (4, R), (5, R)]
        );
        let eight: Vec<f64> = (1..=8).rev().map(f64::from).collect();
        assert_eq!(
            placings(up, &eight),
            vec![
                (1, G),
                (2, G),
                (3, Y),
                (4, Y),
                (5, Y),
                (6, Y),
                (7, R),
                (8, R)
            ]
        );
    }

    /// Ties share the best rank of the tie and the same band, at either end.
    #[test]
    fn ties_share_rank_and_band() {
        let up = Polarity::HigherIsBetter;
        assert_eq!(
            placings(up, &[3.0, 3.0, 2.0, 1.0]),
            vec![(1, G), (1, G), (3, Y), (4, R)]
        );
        assert_eq!(
            placings(up, &[5.0, 4.0, 1.0, 1.0]),
            vec![(1, G), (2, Y), (3, R), (3, R)]
        );
        assert_eq!(placings(up, &[7.0, 7.0, 7.0]), vec![(1, G); 3], "all tied");
    }

    /// Lower is better: the smallest value ranks first.
    #[test]
    fn polarity_is_respected() {
        let down = Polarity::LowerIsBetter;
        assert_eq!(
            placings(down, &[10.0, 2.0, 30.0, 2.0]),
            vec![(3, Y), (1, G), (4, R), (1, G)]
        );
        let ranking = Ranking::new(down, [10.0, 2.0, 30.0, 2.0]);
        let s = ranking.statistics();
        assert_eq!((s.best, s.worst), (Some(2.0), Some(30.0)));
        assert_eq!(s.median, Some(6.0), "even count: mean of 2 and 10");
        assert_eq!(s.mean, Some(11.0));
    }

    /// An outsider is placed against the group without changing it.
    #[test]
    fn outsiders_are_placed_as_one_more_member() {
        let ranking = Ranking::new(Polarity::HigherIsBetter, [4.0, 3.0, 2.0]);
        assert_eq!(
            ranking.place_outsider(10.0),
            Placing {
                rank: 1,
                band: Band::Green
            }
        );
        assert_eq!(
            ranking.place_outsider(2.5),
            Placing {
                rank: 3,
                band: Band::Yellow
            }
        );
        assert_eq!(ranking.statistics().reported, 3);
    }

    #[test]
    fn no_reports_no_statistics() {
        let ranking = Ranking::new(Polarity::HigherIsBetter, []);
        assert!(ranking.is_empty());
        assert_eq!(ranking.statistics(), Statistics::default());
    }
}
