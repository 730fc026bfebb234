//! Cost sharing among the members of a gestione associata (DOMAIN.md "The setting": a capofila
//! runs a function for the member comuni and the costs are shared among them; issue 4 "Cost
//! sharing"). Pure: no I/O.
//!
//! A yearly cost in integer cents is apportioned by population, by usage (counts of calls or
//! cases per member), by fixed quotas (weights), or by a weighted mix of these whose
//! percentages sum to 100. A single method is the mix with 100% on it.
//!
//! **The exact share.** For each basis `k` with weight `w_k` (percent) and total `B_k` over the
//! members, member `i` is owed `T × Σ_k (w_k / 100) × (b_ik / B_k)`. With `L` the least common
//! multiple of the `B_k` in use, that is `T × n_i / D` with `n_i = Σ_k w_k × b_ik × (L / B_k)`
//! (the member's *weight*) and `D = 100 × L`; the `n_i` sum to `D`. All arithmetic is integer
//! (`u128`, checked): never floating point (DOMAIN.md "Payments").
//!
//! **Largest remainder.** Each member first gets the floor `⌊T × n_i / D⌋`; the cents left
//! over (fewer than the number of members) go one each to the members with the **largest
//! remainder** `T × n_i mod D`; ties go to the **larger weight** `n_i`, then to the **smaller
//! ISTAT code**. The shares therefore sum exactly to `T`, and since the rule looks only at
//! values, never at positions, the result does not depend on the order of the input; the lines
//! are returned sorted by ISTAT code.

use std::collections::BTreeSet;

use super::DomainError;
use super::money::{self, MoneyError};

/// The most members an apportionment takes (an association of comuni is far smaller).
pub const MAX_MEMBERS: usize = 1_000;
/// The largest basis value a member may have (population, count of uses, or quota).
pub const MAX_BASIS: i64 = 1_000_000_000_000;

/// The percentages of each basis in the mix, summing to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mix {
    /// Percent of the cost shared by population.
    pub population_percent: i64,
    /// Percent of the cost shared by usage.
    pub usage_percent: i64,
    /// Percent of the cost shared by fixed quotas.
    pub quota_percent: i64,
}

impl Mix {
    /// All by population.
    pub const POPULATION: Mix = Mix {
        population_percent: 100,
        usage_percent: 0,
        quota_percent: 0,
    };
    /// All by usage.
    pub const USAGE: Mix = Mix {
        population_percent: 0,
        usage_percent: 100,
        quota_percent: 0,
    };
    /// All by fixed quotas.
    pub const QUOTA: Mix = Mix {
        population_percent: 0,
        usage_percent: 0,
        quota_percent: 100,
    };

    /// The weights with their request field names, in the order population, usage, quota.
    fn weights(&self) -> [(i64, &'static str); 3] {
        [
            (self.population_percent, "method.population_percent"),
            (self.usage_percent, "method.usage_percent"),
            (self.quota_percent, "method.quota_percent"),
        ]
    }
}

/// One member and its bases, as it arrives.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberBasis {
    /// The member's ISTAT code (6 digits).
    pub istat: String,
    /// Its population.
    pub population: i64,
    /// Its usage of the function (calls, cases) in the year.
    pub usage: i64,
    /// Its fixed quota (any non-negative weight).
    pub quota: i64,
}

impl MemberBasis {
    fn values(&self) -> [(i64, &'static str); 3] {
        [
            (self.population, "population"),
            (self.usage, "usage"),
            (self.quota, "quota"),
        ]
    }
}

/// One line of an apportionment, with how it was computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareLine {
    /// The member's ISTAT code.
    pub istat: String,
    /// Its bases as given.
    pub population: i64,
    /// Its usage as given.
    pub usage: i64,
    /// Its quota as given.
    pub quota: i64,
    /// Its weight `n_i` (out of [`Apportionment::denominator`]).
    pub weight: u128,
    /// The exact share in cents is `exact_numerator / denominator` (= `T × n_i / D`).
    pub exact_numerator: u128,
    /// `⌊T × n_i / D⌋`, in cents.
    pub floor_cents: i64,
    /// `T × n_i mod D`: what decides who gets the remainder cents.
    pub remainder: u128,
    /// True when this member received one of the remainder cents.
    pub remainder_cent: bool,
    /// The share, in cents: the floor, plus one if it received a remainder cent.
    pub share_cents: i64,
}

/// An apportionment: the lines (sorted by ISTAT code) summing exactly to the total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Apportionment {
    /// The total cost, in cents.
    pub total_cents: i64,
    /// The mix used.
    pub mix: Mix,
    /// The total of each basis over the members (population, usage, quota).
    pub basis_totals: [i64; 3],
    /// `D = 100 × L`: the common denominator of the weights and of the exact shares.
    pub denominator: u128,
    /// The cents left after the floors, given one each by largest remainder.
    pub remainder_cents: i64,
    /// One line per member, by ISTAT code.
    pub lines: Vec<ShareLine>,
}

impl Apportionment {
    /// The sum of the shares (always [`Apportionment::total_cents`]).
    pub fn shares_sum(&self) -> i64 {
        self.lines.iter().map(|l| l.share_cents).sum()
    }

    /// The exact share of `line` as a reduced fraction of cents, `p/q`.
    pub fn exact_share(&self, line: &ShareLine) -> String {
        let (p, q) = reduce(line.exact_numerator, self.denominator);
        format!("{p}/{q}")
    }

    /// One line in words: the bases and their part of the totals, the exact share, the floor,
    /// and whether a remainder cent was given.
    pub fn explain(&self, line: &ShareLine) -> String {
        let names = ["population", "usage", "quota"];
        let values = [line.population, line.usage, line.quota];
        let percents = [
            self.mix.population_percent,
            self.mix.usage_percent,
            self.mix.quota_percent,
        ];
        let bases: Vec<String> = (0..3)
            .filter(|&k| percents[k] > 0)
            .map(|k| {
                format!(
                    "{}% by {} {} of {}",
                    percents[k], names[k], values[k], self.basis_totals[k]
                )
            })
            .collect();
        // Four decimals of the exact share, truncated (when they can be computed in u128).
        let decimals = line
            .remainder
            .checked_mul(10_000)
            .map(|r| format!(".{:04}", r / self.denominator))
            .unwrap_or_default();
        let cent = if line.remainder_cent {
            "one remainder cent (largest remainder)"
        } else {
            "no remainder cent"
        };
        format!(
            "{}: {}; exact share {} x {}/{} = {} cents = {}{}...; floor {}; remainder {}/{}; {}; \
             share {} cents",
            line.istat,
            bases.join(" + "),
            self.total_cents,
            line.weight,
            self.denominator,
            self.exact_share(line),
            line.floor_cents,
            decimals,
            line.floor_cents,
            line.remainder,
            self.denominator,
            cent,
            line.share_cents
        )
    }
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The fraction `numerator / denominator` in lowest terms.
pub fn reduce(numerator: u128, denominator: u128) -> (u128, u128) {
    let g = gcd(numerator, denominator).max(1);
    (numerator / g, denominator / g)
}

fn basis_error(field: String, why: &'static str) -> DomainError {
    DomainError::Basis { field, why }
}

fn check_istat(istat: &str) -> bool {
    istat.len() == 6 && istat.bytes().all(|b| b.is_ascii_digit())
}

/// Apportions `total_cents` among `members` by `mix` (see the module documentation for the
/// arithmetic and the tie rule). Refuses, naming the field: a total outside 1 cent..
/// 999,999,999.99 euros (`total_cost_cents`), no members (`members`), more than
/// [`MAX_MEMBERS`], a bad or repeated ISTAT code (`members[i].istat`), a negative or too large
/// basis (`members[i].population`), mix weights negative (`method.usage_percent`) or not
/// summing to 100 (`method`), and a basis in the mix that is zero for every member.
pub fn apportion(
    total_cents: i64,
    mix: Mix,
    members: &[MemberBasis],
) -> Result<Apportionment, DomainError> {
    money::check_cents(total_cents).map_err(|cause: MoneyError| DomainError::Amount {
        field: "total_cost_cents".to_owned(),
        cause,
    })?;
    if members.is_empty() {
        return Err(DomainError::Required {
            field: "members".to_owned(),
        });
    }
    if members.len() > MAX_MEMBERS {
        return Err(DomainError::TooManyMembers {
            field: "members".to_owned(),
            count: members.len(),
        });
    }
    for (weight, field) in mix.weights() {
        if !(0..=100).contains(&weight) {
            return Err(DomainError::Mix {
                field: field.to_owned(),
                why: "a percentage of the mix must be from 0 to 100",
            });
        }
    }
    if mix.weights().iter().map(|(w, _)| w).sum::<i64>() != 100 {
        return Err(DomainError::Mix {
            field: "method".to_owned(),
            why: "the percentages of the mix must sum to 100",
        });
    }

    let mut seen = BTreeSet::new();
    let mut totals = [0i64; 3];
    for (i, m) in members.iter().enumerate() {
        if !check_istat(&m.istat) {
            return Err(DomainError::Istat {
                field: format!("members[{i}].istat"),
            });
        }
        if !seen.insert(m.istat.as_str()) {
            return Err(DomainError::DuplicateMember {
                field: format!("members[{i}].istat"),
            });
        }
        for (k, (value, name)) in m.values().into_iter().enumerate() {
            if value < 0 {
                return Err(basis_error(
                    format!("members[{i}].{name}"),
                    "a basis cannot be negative",
                ));
            }
            if value > MAX_BASIS {
                return Err(basis_error(
                    format!("members[{i}].{name}"),
                    "a basis can be at most 10^12",
                ));
            }
            // At most MAX_MEMBERS × MAX_BASIS = 10^15: no overflow.
            totals[k] += value;
        }
    }
    for (k, (weight, field)) in mix.weights().into_iter().enumerate() {
        if weight > 0 && totals[k] == 0 {
            return Err(basis_error(
                field.to_owned(),
                "every member has zero for a basis the mix uses",
            ));
        }
    }

    let overflow = || {
        basis_error(
            "method".to_owned(),
            "the bases of this mix are too large to apportion exactly",
        )
    };
    let as_u = |v: i64| u128::try_from(v).expect("checked non-negative");
    // L: the least common multiple of the totals of the bases in use.
    let mut lcm: u128 = 1;
    for (k, (weight, _)) in mix.weights().into_iter().enumerate() {
        if weight > 0 {
            let b = as_u(totals[k]);
            lcm = (lcm / gcd(lcm, b)).checked_mul(b).ok_or_else(overflow)?;
        }
    }
    let denominator = lcm.checked_mul(100).ok_or_else(overflow)?;
    let total = as_u(total_cents);

    let mut lines = Vec::with_capacity(members.len());
    for m in members {
        let mut weight: u128 = 0;
        for (k, ((percent, _), (value, _))) in mix.weights().into_iter().zip(m.values()).enumerate()
        {
            if percent == 0 {
                continue;
            }
            let part = as_u(percent)
                .checked_mul(as_u(value))
                .and_then(|p| p.checked_mul(lcm / as_u(totals[k])))
                .ok_or_else(overflow)?;
            weight = weight.checked_add(part).ok_or_else(overflow)?;
        }
        let exact_numerator = total.checked_mul(weight).ok_or_else(overflow)?;
        let floor = exact_numerator / denominator;
        lines.push(ShareLine {
            istat: m.istat.clone(),
            population: m.population,
            usage: m.usage,
            quota: m.quota,
            weight,
            exact_numerator,
            floor_cents: i64::try_from(floor).expect("a floor is at most the total"),
            remainder: exact_numerator % denominator,
            remainder_cent: false,
            share_cents: 0,
        });
    }

    let floors: i64 = lines.iter().map(|l| l.floor_cents).sum();
    let remainder_cents = total_cents - floors;
    debug_assert!(
        (0..i64::try_from(lines.len()).unwrap_or(i64::MAX)).contains(&remainder_cents),
        "the weights sum to D, so fewer cents than members are left over"
    );

    // The tie rule: larger remainder, then larger weight, then smaller ISTAT code.
    let mut order: Vec<usize> = (0..lines.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&lines[a], &lines[b]);
        b.remainder
            .cmp(&a.remainder)
            .then(b.weight.cmp(&a.weight))
            .then(a.istat.cmp(&b.istat))
    });
    for &i in order
        .iter()
        .take(usize::try_from(remainder_cents).expect("non-negative, fewer than the members"))
    {
        lines[i].remainder_cent = true;
    }
    for line in &mut lines {
        line.share_cents = line.floor_cents + i64::from(line.remainder_cent);
    }
    lines.sort_by(|a, b| a.istat.cmp(&b.istat));

    Ok(Apportionment {
        total_cents,
        mix,
        basis_totals: totals,
        denominator,
        remainder_cents,
        lines,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const SARZANA: &str = "011027";
    const CASTELNUOVO: &str = "011011";
    const LUNI: &str = "011020";

    fn member(istat: &str, population: i64, usage: i64, quota: i64) -> MemberBasis {
        MemberBasis {
            istat: istat.to_owned(),
            population,
            usage,
            quota,
        }
    }

    fn shares(a: &Apportionment) -> Vec<(&str, i64, bool)> {
        a.lines
            .iter()
            .map(|l| (l.istat.as_str(), l.share_cents, l.remainder_cent))
            .collect()
    }

    fn refused(total: i64, mix: Mix, members: &[MemberBasis]) -> (&'static str, String) {
        let err = apportion(total, mix, members).expect_err("refused");
        (err.reason(), err.field().to_owned())
    }

    /// 1,000.00 euros by population among 21,800 / 8,200 / 4,300 inhabitants (total 34,300):
    /// 100000 × 21800 = 2,180,000,000 = 34300 × 63556 + 29200
    /// 100000 ×  8200 =   820,000,000 = 34300 × 23906 + 24200
    /// 100000 ×  4300 =   430,000,000 = 34300 × 12536 + 15200
    /// Floors 63556 + 23906 + 12536 = 99998: 2 cents left, to the two largest remainders
    /// (29200 Sarzana, 24200 Castelnuovo): 63557 + 23907 + 12536 = 100000.
    #[test]
    fn by_population_by_hand() {
        let a = apportion(
            100_000,
            Mix::POPULATION,
            &[
                member(LUNI, 4_300, 0, 0),
                member(SARZANA, 21_800, 0, 0),
                member(CASTELNUOVO, 8_200, 0, 0),
            ],
        )
        .expect("apportioned");
        assert_eq!(
            shares(&a),
            vec![
                (CASTELNUOVO, 23_907, true),
                (LUNI, 12_536, false),
                (SARZANA, 63_557, true),
            ]
        );
        assert_eq!(a.remainder_cents, 2);
        assert_eq!(a.basis_totals, [34_300, 0, 0]);
        // D = 100 × 34300; the weights are 100 × population.
        assert_eq!(a.denominator, 3_430_000);
        let sarzana = &a.lines[2];
        assert_eq!(sarzana.weight, 2_180_000);
        assert_eq!(sarzana.floor_cents, 63_556);
        // The remainder scaled by 100 along with D: 29200 × 100.
        assert_eq!(sarzana.remainder, 2_920_000);
        assert_eq!(
            reduce(sarzana.exact_numerator, a.denominator),
            (21_800_000, 343)
        );
        assert_eq!(a.shares_sum(), 100_000);
        assert_eq!(
            a.explain(sarzana),
            "011027: 100% by population 21800 of 34300; exact share 100000 x 2180000/3430000 = \
             21800000/343 cents = 63556.8513...; floor 63556; remainder 2920000/3430000; one \
             remainder cent (largest remainder); share 63557 cents"
        );
    }

    /// A mix: 50% population + 50% usage of 1,000.00 euros.
    /// Populations 21800 / 8200 / 4300 (total 34300); usage 100 / 300 / 100 cases (total 500).
    /// Exact share = 100000 × (½ × p/34300 + ½ × u/500) = 50000p/34300 + 100u:
    /// Sarzana     50000 × 21800 / 34300 = 31778.42… + 10000 = 41778.42…
    /// Castelnuovo 50000 ×  8200 / 34300 = 11953.35… + 30000 = 41953.35…
    /// Luni        50000 ×  4300 / 34300 =  6268.22… + 10000 = 16268.22…
    /// Floors 41778 + 41953 + 16268 = 99999: 1 cent left, to Sarzana (.42 > .35 > .22; the
    /// remainders are those of 50000p mod 34300: 14600, 12100, 7600).
    #[test]
    fn mix_by_hand() {
        let mix = Mix {
            population_percent: 50,
            usage_percent: 50,
            quota_percent: 0,
        };
        let a = apportion(
            100_000,
            mix,
            &[
                member(SARZANA, 21_800, 100, 0),
                member(CASTELNUOVO, 8_200, 300, 0),
                member(LUNI, 4_300, 100, 0),
            ],
        )
        .expect("apportioned");
        assert_eq!(
            shares(&a),
            vec![
                (CASTELNUOVO, 41_953, false),
                (LUNI, 16_268, false),
                (SARZANA, 41_779, true),
            ]
        );
        assert_eq!(a.remainder_cents, 1);
        // L = lcm(34300, 500) = 171500; D = 17,150,000.
        assert_eq!(a.denominator, 17_150_000);
        assert_eq!(a.shares_sum(), 100_000);
    }

    /// Fixed quotas 2 : 1 : 1 of 100 cents: 50, 25, 25 exactly, no remainder cent.
    #[test]
    fn by_quota_exact() {
        let a = apportion(
            100,
            Mix::QUOTA,
            &[
                member(SARZANA, 0, 0, 2),
                member(LUNI, 0, 0, 1),
                member(CASTELNUOVO, 0, 0, 1),
            ],
        )
        .expect("apportioned");
        assert_eq!(
            shares(&a),
            vec![
                (CASTELNUOVO, 25, false),
                (LUNI, 25, false),
                (SARZANA, 50, false),
            ]
        );
        assert_eq!(a.remainder_cents, 0);
    }

    /// Ties: 100 cents among three equal users, 33.33… each; floors 99, one cent left; the
    /// remainders and the weights are equal, so the smaller ISTAT code (011011) takes it.
    #[test]
    fn tie_goes_to_smaller_istat() {
        let a = apportion(
            100,
            Mix::USAGE,
            &[
                member(SARZANA, 0, 7, 0),
                member(LUNI, 0, 7, 0),
                member(CASTELNUOVO, 0, 7, 0),
            ],
        )
        .expect("apportioned");
        assert_eq!(
            shares(&a),
            vec![
                (CASTELNUOVO, 34, true),
                (LUNI, 33, false),
                (SARZANA, 33, false),
            ]
        );
    }

    /// Ties on the remainder with different weights: 5 cents by usage 1 / 3 / 6 (total 10).
    /// Exact: 0.5, 1.5, 3.0; floors 0 + 1 + 3 = 4; one cent left; remainders 5, 5, 0 (of 10):
    /// Castelnuovo (usage 1, ISTAT 011011) and Luni (usage 3, ISTAT 011020) tie, and the
    /// larger weight wins before the ISTAT code is looked at: Luni gets 2.
    #[test]
    fn tie_goes_to_larger_basis_before_istat() {
        let a = apportion(
            5,
            Mix::USAGE,
            &[
                member(CASTELNUOVO, 0, 1, 0),
                member(LUNI, 0, 3, 0),
                member(SARZANA, 0, 6, 0),
            ],
        )
        .expect("apportioned");
        assert_eq!(
            shares(&a),
            vec![
                (CASTELNUOVO, 0, false),
                (LUNI, 2, true),
                (SARZANA, 3, false),
            ]
        );
    }

    /// A member with a zero basis pays nothing, but the others still share everything.
    #[test]
    fn zero_basis_member_pays_nothing() {
        let a = apportion(
            1_001,
            Mix::USAGE,
            &[member(SARZANA, 0, 0, 0), member(LUNI, 0, 3, 0)],
        )
        .expect("apportioned");
        assert_eq!(shares(&a), vec![(LUNI, 1_001, false), (SARZANA, 0, false)]);
    }

    #[test]
    fn refusals_name_the_field() {
        let one = [member(SARZANA, 10, 10, 10)];
        assert_eq!(
            refused(0, Mix::POPULATION, &one),
            ("INVALID_AMOUNT", "total_cost_cents".to_owned())
        );
        assert_eq!(
            refused(-5, Mix::POPULATION, &one),
            ("INVALID_AMOUNT", "total_cost_cents".to_owned())
        );
        assert_eq!(
            refused(100, Mix::POPULATION, &[]),
            ("FIELD_REQUIRED", "members".to_owned())
        );
        assert_eq!(
            refused(
                100,
                Mix::POPULATION,
                &[member(SARZANA, 0, 5, 5), member(LUNI, 0, 5, 5)]
            ),
            ("INVALID_BASIS", "method.population_percent".to_owned())
        );
        assert_eq!(
            refused(
                100,
                Mix::USAGE,
                &[member(SARZANA, 5, 5, 5), member(LUNI, 5, -1, 5)]
            ),
            ("INVALID_BASIS", "members[1].usage".to_owned())
        );
        assert_eq!(
            refused(100, Mix::POPULATION, &[member(SARZANA, -1, 0, 0)]),
            ("INVALID_BASIS", "members[0].population".to_owned())
        );
        assert_eq!(
            refused(100, Mix::QUOTA, &[member(SARZANA, 0, 0, MAX_BASIS + 1)]),
            ("INVALID_BASIS", "members[0].quota".to_owned())
        );
        let sixty_sixty = Mix {
            population_percent: 60,
            usage_percent: 60,
            quota_percent: 0,
        };
        assert_eq!(
            refused(100, sixty_sixty, &one),
            ("INVALID_MIX", "method".to_owned())
        );
        let negative = Mix {
            population_percent: 110,
            usage_percent: -10,
            quota_percent: 0,
        };
        assert_eq!(
            refused(100, negative, &one),
            ("INVALID_MIX", "method.population_percent".to_owned())
        );
        assert_eq!(
            refused(100, Mix::default(), &one),
            ("INVALID_MIX", "method".to_owned())
        );
        assert_eq!(
            refused(
                100,
                Mix::POPULATION,
                &[member(SARZANA, 1, 0, 0), member(SARZANA, 2, 0, 0)]
            ),
            ("DUPLICATE_MEMBER", "members[1].istat".to_owned())
        );
        assert_eq!(
            refused(100, Mix::POPULATION, &[member("11027", 1, 0, 0)]),
            ("INVALID_ISTAT", "members[0].istat".to_owned())
        );
        let many: Vec<_> = (0..=MAX_MEMBERS)
            .map(|i| member(&format!("{i:06}"), 1, 0, 0))
            .collect();
        assert_eq!(
            refused(100, Mix::POPULATION, &many),
            ("TOO_MANY_MEMBERS", "members".to_owned())
        );
    }

    fn members_strategy() -> impl Strategy<Value = Vec<MemberBasis>> {
        prop::collection::btree_map(
            0u32..1_000_000,
            (0i64..5_000_000, 0i64..100_000, 0i64..1_000),
            1..40,
        )
        .prop_map(|m| {
            m.into_iter()
                .map(|(istat, (p, u, q))| member(&format!("{istat:06}"), p, u, q))
                .collect()
        })
    }

    fn mix_strategy() -> impl Strategy<Value = Mix> {
        (0i64..=100)
            .prop_flat_map(|p| (Just(p), 0i64..=100 - p))
            .prop_map(|(p, u)| Mix {
                population_percent: p,
                usage_percent: u,
                quota_percent: 100 - p - u,
            })
    }

    proptest! {
        /// Issue 4: the shares sum exactly to the total, each is within one cent of its exact
        /// value, and reordering the members changes nothing.
        #[test]
        fn sums_exact_and_order_independent(
            total in 1i64..=money::MAX_CENTS,
            mix in mix_strategy(),
            mut members in members_strategy(),
            seed in any::<u64>(),
        ) {
            // Make every basis of the mix non-zero somewhere.
            members[0].population += 1;
            members[0].usage += 1;
            members[0].quota += 1;
            let a = apportion(total, mix, &members).expect("apportioned");
            prop_assert_eq!(a.shares_sum(), total);
            prop_assert!(a.remainder_cents >= 0);
            prop_assert!(usize::try_from(a.remainder_cents).expect("non-negative") < members.len());
            for l in &a.lines {
                prop_assert!(l.share_cents >= 0);
                prop_assert_eq!(u128::try_from(l.floor_cents).expect("non-negative"), l.exact_numerator / a.denominator);
                prop_assert!(l.share_cents - l.floor_cents <= 1);
            }
            prop_assert_eq!(a.lines.iter().map(|l| l.weight).sum::<u128>(), a.denominator);
            // The tie rule: every member given a remainder cent ranks before every member not
            // given one (larger remainder, then larger weight, then smaller ISTAT code).
            let rank = |l: &ShareLine| (l.remainder, l.weight, std::cmp::Reverse(l.istat.clone()));
            for given in a.lines.iter().filter(|l| l.remainder_cent) {
                for other in a.lines.iter().filter(|l| !l.remainder_cent) {
                    prop_assert!(rank(given) > rank(other));
                }
            }

            // A deterministic shuffle from the seed, and the reverse.
            let mut shuffled = members.clone();
            let mut state = seed | 1;
            for i in (1..shuffled.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let j = usize::try_from(state % (u64::try_from(i).expect("small") + 1))
                    .expect("at most i");
                shuffled.swap(i, j);
            }
            prop_assert_eq!(&apportion(total, mix, &shuffled).expect("apportioned"), &a);
            members.reverse();
            prop_assert_eq!(&apportion(total, mix, &members).expect("apportioned"), &a);
        }
    }
}
