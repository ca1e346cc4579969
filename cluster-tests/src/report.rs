//! The run's report: what was done, what was broken, how the cluster behaved under
//! faults, and the checker's verdict, as markdown (for people) and JSON (for tools).
//!
//! The numbers here never decide whether a run passed (the [`Verdict`] does); they say
//! how available the cluster stayed and how fast it came back, so that runs can be
//! compared.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::checker::Verdict;
use crate::history::{Entry, Fault, FaultKind, Op, Outcome, RunInfo};

/// Everything the report says, serializable as the JSON report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The run's parameters (None when the history has no run info).
    pub run: Option<RunInfo>,
    /// Whether the run passed: no violation and no run problem.
    pub passed: bool,
    /// Operation name to outcome name (`ok`, `failed`, `unknown`) to count.
    pub ops_by_kind: BTreeMap<String, BTreeMap<String, u64>>,
    pub total_ops: u64,
    /// Recorded operations per second of the run (None without a run duration).
    pub ops_per_sec: Option<f64>,
    /// Fault kind name to how many were injected.
    pub faults_by_kind: BTreeMap<String, u64>,
    pub faults: Vec<Fault>,
    pub availability: Availability,
    /// Each fault's recovery, in history order.
    pub recovery: Vec<Recovery>,
    /// Fault kind name to its longest recovery in ms; None when some fault of that kind
    /// never recovered (an unbounded recovery is the longest).
    pub longest_recovery_ms: BTreeMap<String, Option<u64>>,
    pub violations: Vec<ReportViolation>,
    pub run_problems: Vec<String>,
    pub notes: Vec<String>,
}

/// The share of operations the cluster served (a 2xx, or a 4xx: a correct refusal such
/// as 409 for a user who exists or 400 for a server already running), overall and split
/// by whether a fault was active when they were invoked. A 5xx, a refused connection or
/// no answer is unavailability.
#[derive(Debug, Clone, Serialize)]
pub struct Availability {
    pub overall: Share,
    /// Operations invoked within some fault's [start_ms, end_ms].
    pub during_faults: Share,
    pub outside_faults: Share,
}

/// How many operations, how many were ok, and the percentage (None without ops).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Share {
    pub ops: u64,
    pub ok: u64,
    pub percent_ok: Option<f64>,
}

impl Share {
    fn add(&mut self, ok: bool) {
        self.ops += 1;
        if ok {
            self.ok += 1;
        }
        self.percent_ok = Some(self.ok as f64 * 100.0 / self.ops as f64);
    }
}

/// How long one fault's nodes took to serve again after the fault was healed.
#[derive(Debug, Clone, Serialize)]
pub struct Recovery {
    pub fault_id: u64,
    pub kind: FaultKind,
    pub nodes: Vec<u32>,
    pub end_ms: u64,
    /// From `end_ms` to the earliest completion of an acknowledged operation sent to
    /// one of the fault's nodes and invoked at or after `end_ms`; None when there was
    /// none ("not recovered").
    pub recovery_ms: Option<u64>,
    /// Whether the fault's window (until the next fault, or the end of the workload)
    /// shows its recovery: an operation to its nodes succeeded in it, or it stayed open
    /// [`RECOVERY_HORIZON_MS`] with operations and none did ("not recovered"). Otherwise
    /// the fault reads "cut short" and is left out of the longest recovery.
    pub judged: bool,
}

/// A violation as reported: its excerpt as JSON lines, as in the history.
#[derive(Debug, Clone, Serialize)]
pub struct ReportViolation {
    pub kind: String,
    pub message: String,
    pub excerpt: Vec<String>,
}

/// Builds the report of a history and its verdict.
pub fn build(entries: &[Entry], verdict: &Verdict) -> Report {
    let run = entries.iter().find_map(|e| match e {
        Entry::Run(run) => Some(run.clone()),
        _ => None,
    });
    let ops: Vec<&Op> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::Op(op) => Some(op),
            _ => None,
        })
        .collect();
    let faults: Vec<Fault> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::Fault(f) => Some(f.clone()),
            _ => None,
        })
        .collect();
    let recovery: Vec<Recovery> = faults
        .iter()
        .map(|f| {
            // the window closes when the next fault starts, or with the workload
            let next = faults
                .iter()
                .map(|g| g.start_ms)
                .filter(|start| *start > f.start_ms)
                .min();
            recovery(f, &ops, next)
        })
        .collect();
    Report {
        ops_per_sec: run
            .as_ref()
            .filter(|r| r.duration_ms > 0)
            .map(|r| ops.len() as f64 / (r.duration_ms as f64 / 1000.0)),
        run,
        passed: verdict.passed(),
        ops_by_kind: ops_by_kind(&ops),
        total_ops: ops.len() as u64,
        faults_by_kind: faults_by_kind(&faults),
        availability: availability(&ops, &faults),
        longest_recovery_ms: longest_recovery(&recovery),
        recovery,
        faults,
        violations: verdict
            .violations
            .iter()
            .map(|v| ReportViolation {
                kind: v.kind.name().to_string(),
                message: v.message.clone(),
                excerpt: v.excerpt.iter().map(json_line).collect(),
            })
            .collect(),
        run_problems: verdict.run_problems.clone(),
        notes: verdict.notes.clone(),
    }
}

/// One history line, as the history writes it.
fn json_line(entry: &Entry) -> String {
    serde_json::to_string(entry).unwrap_or_else(|e| format!("(unserializable entry: {e})"))
}

fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Ok => "ok",
        Outcome::Failed => "failed",
        Outcome::Unknown => "unknown",
    }
}

fn ops_by_kind(ops: &[&Op]) -> BTreeMap<String, BTreeMap<String, u64>> {
    let mut counts: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for op in ops {
        *counts
            .entry(op.kind.name().to_string())
            .or_default()
            .entry(outcome_name(op.outcome).to_string())
            .or_default() += 1;
    }
    counts
}

fn faults_by_kind(faults: &[Fault]) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for f in faults {
        *counts.entry(f.kind.name().to_string()).or_default() += 1;
    }
    counts
}

fn availability(ops: &[&Op], faults: &[Fault]) -> Availability {
    let mut a = Availability {
        overall: Share::default(),
        during_faults: Share::default(),
        outside_faults: Share::default(),
    };
    for op in ops {
        let ok = op.outcome == Outcome::Ok || op.status.is_some_and(|s| (400..500).contains(&s));
        a.overall.add(ok);
        let during = faults
            .iter()
            .any(|f| (f.start_ms..=f.end_ms).contains(&op.invoke_ms));
        if during {
            a.during_faults.add(ok);
        } else {
            a.outside_faults.add(ok);
        }
    }
    a
}

/// How long a fault's window must stay open (no next fault, the workload still running)
/// before a fault with no success since counts as not recovered rather than cut short.
pub const RECOVERY_HORIZON_MS: u64 = 15_000;

/// A fault's recovery, judged from the operations invoked after it ended and before
/// `next_fault` (the start of the next fault) if any. A fault that names no node (none
/// should) is taken to concern every node.
fn recovery(fault: &Fault, ops: &[&Op], next_fault: Option<u64>) -> Recovery {
    let last_invoke = ops.iter().map(|op| op.invoke_ms).max().unwrap_or(0);
    let window_end = next_fault.unwrap_or(u64::MAX).min(last_invoke + 1);
    let after: Vec<&&Op> = ops
        .iter()
        .filter(|op| op.invoke_ms >= fault.end_ms && op.invoke_ms < window_end)
        .filter(|op| fault.nodes.is_empty() || fault.nodes.contains(&op.node))
        .collect();
    let first_ok = after
        .iter()
        .filter(|op| op.outcome == Outcome::Ok)
        .map(|op| op.complete_ms)
        .min();
    Recovery {
        fault_id: fault.id,
        kind: fault.kind,
        nodes: fault.nodes.clone(),
        end_ms: fault.end_ms,
        recovery_ms: first_ok.map(|t| t.saturating_sub(fault.end_ms)),
        judged: first_ok.is_some()
            || (!after.is_empty() && window_end >= fault.end_ms + RECOVERY_HORIZON_MS),
    }
}

/// The longest recovery per fault kind; a fault that never recovered makes it None.
fn longest_recovery(recovery: &[Recovery]) -> BTreeMap<String, Option<u64>> {
    let mut longest: BTreeMap<String, Option<u64>> = BTreeMap::new();
    for r in recovery.iter().filter(|r| r.judged) {
        let slot = longest.entry(r.kind.name().to_string()).or_insert(Some(0));
        *slot = match (*slot, r.recovery_ms) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
    }
    longest
}

impl Report {
    /// The report as pretty JSON.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!("{{\"error\": {:?}}}", e.to_string()))
    }

    /// The report as markdown. Its last line is `violations: N`, for a quick grep.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        md.push_str("# Chaos run report\n\n");
        self.md_summary(&mut md);
        self.md_ops(&mut md);
        self.md_faults(&mut md);
        self.md_availability(&mut md);
        self.md_recovery(&mut md);
        self.md_violations(&mut md);
        md_list(&mut md, "Run problems", &self.run_problems);
        md_list(&mut md, "Notes", &self.notes);
        let _ = writeln!(md, "violations: {}", self.violations.len());
        md
    }

    fn md_summary(&self, md: &mut String) {
        match &self.run {
            Some(run) => {
                let kinds: Vec<&str> = run.faults.iter().map(|k| k.name()).collect();
                let _ = writeln!(
                    md,
                    "Seed {}, {} nodes{}, profile `{}`, {} ms, faults: {}, majority faults: {}.\n",
                    run.seed,
                    run.nodes,
                    if run.network.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", run.network)
                    },
                    run.profile,
                    run.duration_ms,
                    if kinds.is_empty() {
                        "none".to_string()
                    } else {
                        kinds.join(", ")
                    },
                    if run.majority_faults { "yes" } else { "no" }
                );
            }
            None => md.push_str("No run info in the history.\n\n"),
        }
        let _ = writeln!(
            md,
            "**Result: {}** ({} violations, {} run problems)\n",
            if self.passed { "passed" } else { "FAILED" },
            self.violations.len(),
            self.run_problems.len()
        );
    }

    fn md_ops(&self, md: &mut String) {
        let _ = writeln!(
            md,
            "## Operations\n\n{} operations, {} per second.\n",
            self.total_ops,
            self.ops_per_sec
                .map(|r| format!("{r:.2}"))
                .unwrap_or_else(|| "unknown".to_string())
        );
        md.push_str("| operation | ok | failed | unknown | total |\n");
        md.push_str("|---|---:|---:|---:|---:|\n");
        for (kind, outcomes) in &self.ops_by_kind {
            let count = |o: &str| outcomes.get(o).copied().unwrap_or(0);
            let _ = writeln!(
                md,
                "| {kind} | {} | {} | {} | {} |",
                count("ok"),
                count("failed"),
                count("unknown"),
                outcomes.values().sum::<u64>()
            );
        }
        md.push('\n');
    }

    fn md_faults(&self, md: &mut String) {
        md.push_str("## Faults\n\n");
        if self.faults.is_empty() {
            md.push_str("No faults injected.\n\n");
            return;
        }
        let counts: Vec<String> = self
            .faults_by_kind
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect();
        let _ = writeln!(
            md,
            "{} faults ({}).\n",
            self.faults.len(),
            counts.join(", ")
        );
        md.push_str("| id | kind | nodes | start ms | end ms | recovery |\n");
        md.push_str("|---:|---|---|---:|---:|---:|\n");
        for f in &self.faults {
            let rec = self.recovery.iter().find(|r| r.fault_id == f.id);
            let rec = match rec {
                Some(r) if !r.judged => "cut short".to_string(),
                r => recovery_text(r.and_then(|r| r.recovery_ms)),
            };
            let nodes: Vec<String> = f.nodes.iter().map(u32::to_string).collect();
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} |",
                f.id,
                f.kind.name(),
                nodes.join(", "),
                f.start_ms,
                f.end_ms,
                rec
            );
        }
        md.push('\n');
    }

    fn md_availability(&self, md: &mut String) {
        md.push_str("## Availability\n\n");
        md.push_str("Served: a 2xx, or a 4xx refusal (a user who exists, a server already running); a 5xx, a refused connection or no answer is not.\n\n");
        md.push_str("| when invoked | ops | served | availability |\n");
        md.push_str("|---|---:|---:|---:|\n");
        let a = &self.availability;
        for (label, share) in [
            ("during faults", &a.during_faults),
            ("outside faults", &a.outside_faults),
            ("overall", &a.overall),
        ] {
            let _ = writeln!(
                md,
                "| {label} | {} | {} | {} |",
                share.ops,
                share.ok,
                share
                    .percent_ok
                    .map(|p| format!("{p:.1}%"))
                    .unwrap_or_else(|| "-".to_string())
            );
        }
        md.push('\n');
    }

    fn md_recovery(&self, md: &mut String) {
        md.push_str("## Recovery\n\n");
        if self.longest_recovery_ms.is_empty() {
            md.push_str("No faults, nothing to recover from.\n\n");
            return;
        }
        md.push_str("| fault kind | longest recovery |\n");
        md.push_str("|---|---:|\n");
        for (kind, ms) in &self.longest_recovery_ms {
            let _ = writeln!(md, "| {kind} | {} |", recovery_text(*ms));
        }
        md.push('\n');
    }

    fn md_violations(&self, md: &mut String) {
        md.push_str("## Violations\n\n");
        if self.violations.is_empty() {
            md.push_str("None.\n\n");
            return;
        }
        for (i, v) in self.violations.iter().enumerate() {
            let _ = writeln!(md, "### {}. {}\n\n{}\n", i + 1, v.kind, v.message);
            md.push_str("```json\n");
            for line in &v.excerpt {
                md.push_str(line);
                md.push('\n');
            }
            md.push_str("```\n\n");
        }
    }
}

fn recovery_text(ms: Option<u64>) -> String {
    ms.map(|ms| format!("{ms} ms"))
        .unwrap_or_else(|| "not recovered".to_string())
}

/// A section with a bullet list, left out when empty.
fn md_list(md: &mut String, title: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    let _ = writeln!(md, "## {title}\n");
    for item in items {
        let _ = writeln!(md, "- {item}");
    }
    md.push('\n');
}

/// Writes `report.md` and `report.json` into `dir` (created if missing); returns their
/// paths.
pub fn write(dir: &Path, report: &Report) -> std::io::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let md = dir.join("report.md");
    let json = dir.join("report.json");
    std::fs::write(&md, report.markdown())?;
    std::fs::write(&json, report.json())?;
    Ok((md, json))
}
