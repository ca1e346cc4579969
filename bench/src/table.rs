//! The table's data: one figure of one system, rows of them (one metric each, its unit
//! and which way is better), in the order they were measured.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::load::Measured;

/// One figure of one system.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Figure {
    /// The figure (over several rounds, their median).
    pub value: Option<f64>,
    /// Why there is no value (the run failed), if so.
    pub failure: Option<String>,
    /// Over several rounds, the lowest and highest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spread: Option<Spread>,
}

/// The range of a figure over a run's rounds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Spread {
    pub min: f64,
    pub max: f64,
}

impl Figure {
    pub fn of(m: &Measured, value: impl FnOnce(&Measured) -> Option<f64>) -> Figure {
        if m.failed() {
            Figure {
                value: None,
                failure: Some(format!(
                    "{} errors; first: {}",
                    m.errors,
                    m.first_error.clone().unwrap_or_else(|| "no answer".into())
                )),
                spread: None,
            }
        } else {
            Figure {
                value: value(m),
                failure: None,
                spread: None,
            }
        }
    }

    pub fn value(v: f64) -> Figure {
        Figure {
            value: Some(v),
            failure: None,
            spread: None,
        }
    }

    pub fn failed(e: impl std::fmt::Display) -> Figure {
        Figure {
            value: None,
            failure: Some(e.to_string()),
            spread: None,
        }
    }
}

/// A row of the table: one metric, its unit, and whether more is better.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    pub workload: String,
    pub metric: String,
    pub unit: String,
    pub higher_is_better: bool,
    pub figures: BTreeMap<String, Figure>,
}

/// The rows, in the order they were measured.
#[derive(Default)]
pub struct Table {
    pub rows: Vec<Row>,
}

impl Table {
    pub fn put(
        &mut self,
        workload: &str,
        metric: &str,
        unit: &str,
        higher: bool,
        system: &str,
        f: Figure,
    ) {
        let row = match self
            .rows
            .iter_mut()
            .position(|r| r.workload == workload && r.metric == metric)
        {
            Some(i) => &mut self.rows[i],
            None => {
                self.rows.push(Row {
                    workload: workload.into(),
                    metric: metric.into(),
                    unit: unit.into(),
                    higher_is_better: higher,
                    figures: BTreeMap::new(),
                });
                self.rows.last_mut().expect("just pushed")
            }
        };
        row.figures.insert(system.into(), f);
    }

    /// req/s, p50 and p99 of a load run.
    pub fn load(&mut self, workload: &str, system: &str, m: &Measured) {
        eprintln!(
            "  {workload} on {system}: {:.0} req/s, p50 {:?} ms, p99 {:?} ms{}",
            m.per_sec(),
            m.quantile_ms(0.5),
            m.quantile_ms(0.99),
            m.first_error
                .as_ref()
                .map(|e| format!(" — {} errors, first: {e}", m.errors))
                .unwrap_or_default()
        );
        self.put(
            workload,
            "req/s",
            "req/s",
            true,
            system,
            Figure::of(m, |m| Some(m.per_sec())),
        );
        self.latency(workload, system, m);
    }

    /// CPU time `cpu` spent on a load run's successful requests, per request.
    pub fn cpu_per_request(&mut self, workload: &str, system: &str, m: &Measured, cpu: Duration) {
        let us = m.cpu_us_per_request(cpu);
        eprintln!("  {workload} on {system}: {us:.1} µs CPU per request");
        self.put(
            workload,
            "CPU per request",
            "µs",
            false,
            system,
            Figure::of(m, |_| Some(us)),
        );
    }

    /// p50 and p99 of a load run.
    pub fn latency(&mut self, workload: &str, system: &str, m: &Measured) {
        self.put(
            workload,
            "p50",
            "ms",
            false,
            system,
            Figure::of(m, |m| m.quantile_ms(0.5)),
        );
        self.put(
            workload,
            "p99",
            "ms",
            false,
            system,
            Figure::of(m, |m| m.quantile_ms(0.99)),
        );
    }
}
