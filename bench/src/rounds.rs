//! Rounds of a run (`--rounds`) and A/B comparisons (`--baseline`): the order the
//! systems take in each round, one table of the rounds' medians, how far the current
//! Galilean's figure is from the baseline's, and both builds' binaries read afresh.

use std::collections::BTreeMap;

use crate::systems::Kind;
use crate::table::{Figure, Row, Spread, Table};

/// A difference from the baseline beyond this fraction (either way) is marked.
pub const NOTABLE: f64 = 0.05;

/// The systems in the order round `round` (counted from 0) takes them: `kinds` as
/// given, with the two Galilean builds swapped in every second round (A then B, then B
/// then A), so that over an even number of rounds each goes first as often as the
/// other and a machine whose speed drifts during the run affects both alike.
pub fn order(kinds: &[Kind], round: usize) -> Vec<Kind> {
    let mut order = kinds.to_vec();
    let at = |k: Kind| kinds.iter().position(|x| *x == k);
    if round % 2 == 1 {
        if let (Some(a), Some(b)) = (at(Kind::Galilean), at(Kind::GalileanBaseline)) {
            order.swap(a, b);
        }
    }
    order
}

/// The middle of `values` (the mean of the two middle ones when their count is even);
/// none for none.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// One table from the tables of every round: each figure is the median of its rounds,
/// with their range; a figure that failed in any round is failed (the first failing
/// round named). Rows keep the order in which they first appear. One round's table is
/// returned as it is.
pub fn combine(mut rounds: Vec<Table>) -> Table {
    if rounds.len() == 1 {
        return rounds.pop().expect("one table");
    }
    let mut out = Table::default();
    // (row in `out`, system) -> that figure in each round, with the round's number
    let mut figures: BTreeMap<(usize, String), Vec<(usize, &Figure)>> = BTreeMap::new();
    for (round, table) in rounds.iter().enumerate() {
        for row in &table.rows {
            let i = match out
                .rows
                .iter()
                .position(|r| r.workload == row.workload && r.metric == row.metric)
            {
                Some(i) => i,
                None => {
                    out.rows.push(Row {
                        figures: BTreeMap::new(),
                        ..row.clone()
                    });
                    out.rows.len() - 1
                }
            };
            for (system, f) in &row.figures {
                figures
                    .entry((i, system.clone()))
                    .or_default()
                    .push((round, f));
            }
        }
    }
    for ((i, system), fs) in figures {
        out.rows[i].figures.insert(system, over_rounds(&fs));
    }
    out
}

/// The figure of a system over the rounds it was measured in.
fn over_rounds(fs: &[(usize, &Figure)]) -> Figure {
    if let Some((round, e)) = fs
        .iter()
        .find_map(|(round, f)| f.failure.as_ref().map(|e| (round, e)))
    {
        let failed = fs.iter().filter(|(_, f)| f.failure.is_some()).count();
        return Figure::failed(format!(
            "failed in {failed} of {} rounds, first in round {}: {e}",
            fs.len(),
            round + 1
        ));
    }
    let values: Vec<f64> = fs.iter().filter_map(|(_, f)| f.value).collect();
    Figure {
        value: median(&values),
        failure: None,
        spread: values.iter().copied().reduce(f64::min).map(|min| Spread {
            min,
            max: values.iter().copied().fold(min, f64::max),
        }),
    }
}

/// How far `current` is from `baseline`, as a fraction of `baseline` (+0.012: 1.2 %
/// more); none when that is undefined (a baseline of zero or less, or not a number).
pub fn delta(current: f64, baseline: f64) -> Option<f64> {
    if current == baseline {
        Some(0.0)
    } else if baseline > 0.0 && current.is_finite() && baseline.is_finite() {
        Some(current / baseline - 1.0)
    } else {
        None
    }
}

/// The current Galilean's figure against the baseline's, in `row`, when both have one.
pub fn row_delta(row: &Row) -> Option<f64> {
    let value = |k: Kind| row.figures.get(k.short()).and_then(|f| f.value);
    delta(value(Kind::Galilean)?, value(Kind::GalileanBaseline)?)
}

/// Whether `delta` is beyond [`NOTABLE`].
pub fn notable(delta: f64) -> bool {
    delta.abs() > NOTABLE
}

/// Has the kernel forget the cached pages of the binary at `path` (written out first),
/// so that its next start reads it from disk. A hub's resident memory counts the pages
/// of its binary it has mapped, and how many a page fault maps depends on how the file
/// came into the cache: on this machine a node started from a `cp` of the binary, just
/// written, had 2.4 MiB more of them than one started from the linker's output. An A/B
/// run starts both builds from files read afresh, alike.
pub fn uncache(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(path)?;
    file.sync_all()?;
    nix::fcntl::posix_fadvise(
        file.as_raw_fd(),
        0,
        0,
        nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
    )
    .map_err(std::io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_galilean_builds_take_turns_going_first() {
        use Kind::*;
        let kinds = [JupyterHub, Galilean, GalileanBaseline, GalileanCluster];
        assert_eq!(order(&kinds, 0), kinds);
        assert_eq!(
            order(&kinds, 1),
            [JupyterHub, GalileanBaseline, Galilean, GalileanCluster]
        );
        assert_eq!(order(&kinds, 2), kinds);
        assert_eq!(
            order(&[GalileanBaseline, Galilean], 3),
            [Galilean, GalileanBaseline]
        );
        // one build alone: every round the same
        let one = [JupyterHub, Galilean, GalileanCluster];
        assert_eq!(order(&one, 1), one);
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }

    fn table(figures: &[(&str, Figure)]) -> Table {
        let mut t = Table::default();
        for (system, f) in figures {
            t.put("W1 whoami c16", "req/s", "req/s", true, system, f.clone());
        }
        t
    }

    #[test]
    fn rounds_combine_into_medians_with_their_range_and_failures_stick() {
        let mut rounds: Vec<Table> = [10.0, 30.0, 20.0]
            .into_iter()
            .map(|v| {
                table(&[
                    ("galilean", Figure::value(v)),
                    ("galilean-baseline", Figure::value(v + 1.0)),
                ])
            })
            .collect();
        rounds.push(table(&[
            ("galilean", Figure::value(40.0)),
            ("galilean-baseline", Figure::failed("503")),
        ]));
        let t = combine(rounds);
        assert_eq!(t.rows.len(), 1);
        let g = &t.rows[0].figures["galilean"];
        assert_eq!(g.value, Some(25.0));
        assert_eq!(
            g.spread,
            Some(Spread {
                min: 10.0,
                max: 40.0
            })
        );
        let b = &t.rows[0].figures["galilean-baseline"];
        assert_eq!(b.value, None);
        assert_eq!(
            b.failure.as_deref(),
            Some("failed in 1 of 4 rounds, first in round 4: 503")
        );
        // one round: as it was
        let one = combine(vec![table(&[("galilean", Figure::value(7.0))])]);
        assert_eq!(one.rows[0].figures["galilean"].spread, None);
    }

    #[test]
    fn delta_is_current_over_baseline_minus_one() {
        let d = delta(101.2, 100.0).unwrap();
        assert!((d - 0.012).abs() < 1e-12, "{d}");
        assert!(!notable(d));
        assert!(notable(delta(94.0, 100.0).unwrap()));
        assert_eq!(delta(0.0, 0.0), Some(0.0));
        assert_eq!(delta(3.0, 0.0), None);
        let mut t = table(&[
            ("galilean", Figure::value(110.0)),
            ("galilean-baseline", Figure::value(100.0)),
        ]);
        assert!(row_delta(&t.rows[0]).is_some_and(|d| (d - 0.1).abs() < 1e-12));
        t.put(
            "W1 whoami c16",
            "req/s",
            "req/s",
            true,
            "galilean",
            Figure::failed("x"),
        );
        assert_eq!(row_delta(&t.rows[0]), None);
    }
}
