//! The report's SVG plots: each run's heap over time and the scaling charts.

use super::document::{heap_plot_path, SCALING_CHARTS};
use super::entry::Entry;
use super::scaling::scaling_series;
use crate::plots::{self, Curve};

/// Every plot of the report: (path relative to the report folder, SVG text), and a note for each
/// plot that could not be drawn.
pub fn svg_plots(entries: &[Entry]) -> (Vec<(String, String)>, Vec<String>) {
    let mut plots_out = Vec::new();
    let mut notes = Vec::new();
    for entry in entries {
        let Some(report) = entry.report() else {
            continue;
        };
        match plots::heap_over_time(report) {
            Ok(Some(svg)) => plots_out.push((heap_plot_path(&entry.scenario), svg)),
            Ok(None) => {}
            Err(e) => notes.push(format!("plot of {}: {e}", entry.scenario)),
        }
    }
    let series = scaling_series(entries);
    for (path, caption, names) in SCALING_CHARTS {
        let mut curves = Vec::new();
        for s in series.iter().filter(|s| names.contains(&s.spec.name)) {
            let measured: Vec<(f64, f64)> = s
                .points
                .iter()
                .filter_map(|p| p.bytes.as_ref().ok().map(|&b| (p.n as f64, b as f64)))
                .collect();
            let slope = s.fit.map_or(String::new(), |f| {
                format!(", slope {:.1} B/{}", f.slope, s.spec.unit)
            });
            let missing: Vec<&str> = s
                .points
                .iter()
                .filter(|p| p.bytes.is_err())
                .map(|p| p.scenario)
                .collect();
            let missing = if missing.is_empty() {
                String::new()
            } else {
                format!(" (no figure: {})", missing.join(", "))
            };
            curves.push(Curve {
                label: format!("{}{slope}{missing}", s.spec.title),
                points: measured,
                reference: false,
            });
            if let Some(target) = s.spec.target_per_unit {
                curves.push(Curve {
                    label: format!("target: {target} B per {}", s.spec.unit),
                    points: s
                        .points
                        .iter()
                        .map(|p| (p.n as f64, (p.n * target) as f64))
                        .collect(),
                    reference: true,
                });
            }
        }
        let x_desc = if path.contains("idle") {
            "sessions in IDLE"
        } else {
            "emails in INBOX"
        };
        match plots::scaling_chart(caption, x_desc, "bytes", &curves) {
            Ok(svg) => plots_out.push((path.to_string(), svg)),
            Err(e) => notes.push(format!("plot {path}: {e}")),
        }
    }
    (plots_out, notes)
}
