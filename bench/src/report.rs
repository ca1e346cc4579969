//! The table: one row per figure, a column per system (and the ceiling where there is
//! one), and Galilean's ratio to JupyterHub (above 1 is better, whichever way the
//! figure goes); in an A/B run, the current Galilean's difference from the baseline's.
//! Results go under `bench/results/` with the machine's description.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::rounds;
use crate::systems::{Kind, Paths};
use crate::table::{Row, Table};

/// What the figures were measured on.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub kernel: String,
    pub galilean: String,
    /// Where the `galilean` binary is.
    pub galilean_binary: String,
    /// The baseline's `galilean --version` and where it is, in an A/B run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
    pub jupyterhub: String,
    pub chp: String,
    pub date: String,
}

fn output(program: &Path, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned()
                + &String::from_utf8_lossy(&o.stderr);
            text.lines().next().unwrap_or("").trim().to_owned()
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "not installed".into())
}

impl Machine {
    pub fn describe(paths: &Paths) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_else(|| "unknown".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let kib: f64 = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            memory_gib: kib / 1024.0 / 1024.0,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_owned(),
            galilean: output(&paths.galilean, &["--version"]),
            galilean_binary: paths.galilean.display().to_string(),
            baseline: paths
                .baseline
                .as_ref()
                .map(|b| format!("{} at {}", output(b, &["--version"]), b.display())),
            jupyterhub: output(&paths.peer.join("venv/bin/jupyterhub"), &["--version"]),
            chp: output(
                &paths
                    .peer
                    .join("node/node_modules/.bin/configurable-http-proxy"),
                &["--version"],
            ),
            date: chrono_free_date(),
        }
    }
}

/// Today as `YYYY-MM-DDTHH:MM:SSZ`, from the system clock.
fn chrono_free_date() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // civil from days (Howard Hinnant's algorithm)
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn cell(row: &Row, system: &str) -> String {
    match row.figures.get(system) {
        None => String::new(),
        Some(f) => match (f.value, &f.failure) {
            (Some(v), _) => match f.spread {
                Some(s) => format!("{} ({}–{})", number(v), number(s.min), number(s.max)),
                None => number(v),
            },
            (None, Some(_)) => "FAILED".into(),
            (None, None) => "–".into(),
        },
    }
}

fn number(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// `galilean`'s advantage: its figure over JupyterHub's where more is better, the
/// inverse where less is.
fn ratio(row: &Row, galilean: Kind) -> String {
    let value = |k: Kind| row.figures.get(k.short()).and_then(|f| f.value);
    match (value(galilean), value(Kind::JupyterHub)) {
        (Some(g), Some(j)) if g > 0.0 && j > 0.0 => {
            let r = if row.higher_is_better { g / j } else { j / g };
            format!("{}×", number(r))
        }
        _ => String::new(),
    }
}

/// The current Galilean's difference from the baseline's in `row`, e.g. "+1.2 %", in
/// bold beyond [`rounds::NOTABLE`].
fn delta(row: &Row) -> String {
    match rounds::row_delta(row) {
        Some(d) if rounds::notable(d) => format!("**{:+.1} %**", d * 100.0),
        Some(d) => format!("{:+.1} %", d * 100.0),
        None => String::new(),
    }
}

/// The table as Markdown, with the machine and the failures listed under it; `rounds`
/// is how many rounds its figures are the medians of.
pub fn markdown(
    table: &Table,
    kinds: &[Kind],
    machine: &Machine,
    smoke: bool,
    rounds: usize,
) -> String {
    let mut md = String::new();
    if smoke {
        md.push_str("Smoke run: every workload for moments, the figures mean nothing.\n\n");
    }
    let galilean = match &machine.baseline {
        Some(baseline) => format!(
            "{} at {}; baseline {baseline}",
            machine.galilean, machine.galilean_binary
        ),
        None => machine.galilean.clone(),
    };
    let peer = if kinds.contains(&Kind::JupyterHub) {
        format!(
            " JupyterHub {}; configurable-http-proxy {};",
            machine.jupyterhub, machine.chp
        )
    } else {
        String::new()
    };
    let _ = writeln!(
        md,
        "{} cores ({}), {:.0} GiB, Linux {}; {galilean};{peer} {}.\n",
        machine.cores, machine.cpu, machine.memory_gib, machine.kernel, machine.date
    );
    if rounds > 1 {
        let _ = writeln!(
            md,
            "Medians of {rounds} rounds (lowest–highest in brackets), every system started \
             afresh in each round{}.\n",
            if kinds.contains(&Kind::GalileanBaseline) && kinds.contains(&Kind::Galilean) {
                ", the two Galilean builds taking turns going first"
            } else {
                ""
            }
        );
    }
    md.push_str("| workload | metric |");
    for k in kinds {
        let _ = write!(md, " {} |", k.name());
    }
    md.push_str(" ceiling |");
    // an advantage column per Galilean measured (the baseline aside), when JupyterHub
    // was too
    let advantages: Vec<Kind> = if kinds.contains(&Kind::JupyterHub) {
        kinds
            .iter()
            .copied()
            .filter(|k| k.is_galilean() && *k != Kind::GalileanBaseline)
            .collect()
    } else {
        Vec::new()
    };
    for k in &advantages {
        let _ = write!(md, " advantage, {} |", k.nodes());
    }
    let ab = kinds.contains(&Kind::Galilean) && kinds.contains(&Kind::GalileanBaseline);
    if ab {
        md.push_str(" Δ vs baseline |");
    }
    md.push_str("\n|---|---|");
    for _ in 0..kinds.len() + 1 + advantages.len() + usize::from(ab) {
        md.push_str("---:|");
    }
    md.push('\n');
    for row in &table.rows {
        if row.metric == row.unit || row.unit.is_empty() {
            let _ = write!(md, "| {} | {} |", row.workload, row.metric);
        } else {
            let _ = write!(md, "| {} | {} ({}) |", row.workload, row.metric, row.unit);
        }
        for k in kinds {
            let _ = write!(md, " {} |", cell(row, k.short()));
        }
        let ceiling = [cell(row, "ceiling"), cell(row, "direct")].join("");
        let _ = write!(md, " {ceiling} |");
        for k in &advantages {
            let _ = write!(md, " {} |", ratio(row, *k));
        }
        if ab {
            let _ = write!(md, " {} |", delta(row));
        }
        md.push('\n');
    }
    if ab {
        let deltas: Vec<f64> = table.rows.iter().filter_map(rounds::row_delta).collect();
        let beyond = deltas.iter().filter(|d| rounds::notable(**d)).count();
        let _ = writeln!(
            md,
            "\nΔ vs baseline: {} over {}, minus one (+ is a larger figure, whichever way is \
             better); beyond ±{:.0} % in bold: {beyond} of {} figures.",
            Kind::Galilean.name(),
            Kind::GalileanBaseline.name(),
            rounds::NOTABLE * 100.0,
            deltas.len()
        );
    }
    let failures: Vec<String> = table
        .rows
        .iter()
        .flat_map(|r| {
            r.figures.iter().filter_map(move |(system, f)| {
                f.failure
                    .as_ref()
                    .map(|e| format!("- {} / {} on {system}: {e}", r.workload, r.metric))
            })
        })
        .collect();
    if !failures.is_empty() {
        md.push_str(
            "\nFailed runs (a run with any error or unexpected status counts as failed):\n\n",
        );
        md.push_str(&failures.join("\n"));
        md.push('\n');
    }
    md
}

pub fn any_failed(table: &Table) -> bool {
    table
        .rows
        .iter()
        .any(|r| r.figures.values().any(|f| f.failure.is_some()))
}

/// Writes `<out>/<date>.md` and `.json`, and `<out>/latest.md`; the Markdown's path.
pub fn write(
    out: &Path,
    table: &Table,
    machine: &Machine,
    md: &str,
    rounds: usize,
) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(out)?;
    let stamp = machine.date.replace(':', "-");
    let md_path = out.join(format!("{stamp}.md"));
    std::fs::write(&md_path, md)?;
    std::fs::write(out.join("latest.md"), md)?;
    let json = serde_json::json!({
        "machine": machine,
        "rounds": rounds,
        "rows": table.rows,
    });
    std::fs::write(
        out.join(format!("{stamp}.json")),
        serde_json::to_string_pretty(&json).unwrap_or_default(),
    )?;
    Ok(md_path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{Figure, Spread};

    fn machine(baseline: Option<&str>) -> Machine {
        Machine {
            cpu: "cpu".into(),
            cores: 2,
            memory_gib: 1.0,
            kernel: "6".into(),
            galilean: "galilean 0.1.0".into(),
            galilean_binary: "/a/galilean".into(),
            baseline: baseline.map(String::from),
            jupyterhub: "not installed".into(),
            chp: "not installed".into(),
            date: "today".into(),
        }
    }

    #[test]
    fn an_ab_table_has_the_baseline_column_and_the_difference_marked_beyond_5_percent() {
        let mut t = Table::default();
        let with = |v: f64, lo: f64, hi: f64| Figure {
            spread: Some(Spread { min: lo, max: hi }),
            ..Figure::value(v)
        };
        t.put(
            "W1",
            "req/s",
            "req/s",
            true,
            "galilean",
            with(1100.0, 1000.0, 1200.0),
        );
        t.put(
            "W1",
            "req/s",
            "req/s",
            true,
            "galilean-baseline",
            with(1000.0, 990.0, 1010.0),
        );
        t.put("W1", "p50", "ms", false, "galilean", Figure::value(1.01));
        t.put(
            "W1",
            "p50",
            "ms",
            false,
            "galilean-baseline",
            Figure::value(1.0),
        );
        let kinds = [Kind::Galilean, Kind::GalileanBaseline];
        let md = markdown(&t, &kinds, &machine(Some("galilean 0.0.9 at /b")), false, 2);
        assert!(
            md.contains(
                "| Galilean (1 node) | Galilean baseline (1 node) | ceiling | Δ vs baseline |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| W1 | req/s | 1100 (1000–1200) | 1000 (990–1010) |  | **+10.0 %** |"),
            "{md}"
        );
        assert!(
            md.contains("| W1 | p50 (ms) | 1.01 | 1.00 |  | +1.0 % |"),
            "{md}"
        );
        assert!(md.contains("in bold: 1 of 2 figures"), "{md}");
        assert!(md.contains("baseline galilean 0.0.9 at /b"), "{md}");
        assert!(md.contains("Medians of 2 rounds"), "{md}");
        // without a baseline, no such column
        let md = markdown(&t, &[Kind::Galilean], &machine(None), false, 1);
        assert!(!md.contains("Δ") && !md.contains("Medians"), "{md}");
    }
}
