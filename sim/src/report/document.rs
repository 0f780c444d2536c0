//! The report as a document: its blocks in order, from the runs' entries.

use super::blocks::{bytes_cell, one_line, Block};
use super::entry::{Entry, Verdict};
use super::references::{reference_rows, REFERENCE_LINKS};
use super::scaling::{scaling_series, Series};
use super::tables::{table_row, TABLE_HEADER};
use crate::scenarios::workloads::SCALE_EMAIL_BYTES;

fn series_blocks(series: &[Series], blocks: &mut Vec<Block>) {
    for s in series {
        blocks.push(Block::Heading(
            3,
            format!("{} ({})", s.spec.title, s.spec.name),
        ));
        let slope = match s.fit {
            Some(fit) => format!(
                "Least-squares slope: **{:.2} B per {}** (intercept {:.0} B), over the {} measured points.",
                fit.slope,
                s.spec.unit,
                fit.intercept,
                s.points.iter().filter(|p| p.bytes.is_ok()).count()
            ),
            None => {
                "Slope: not computed (fewer than two measured points; a slope needs two N).".to_string()
            }
        };
        let target = s.spec.target_per_unit.map_or(String::new(), |t| {
            format!(" Target: {t} B per {}.", s.spec.unit)
        });
        blocks.push(Block::Paragraph(format!("{slope}{target}")));
        blocks.push(Block::Table {
            header: vec![
                format!("{}s", s.spec.unit),
                "scenario".into(),
                "bytes".into(),
                format!("bytes per {}", s.spec.unit),
            ],
            rows: s
                .points
                .iter()
                .map(|p| match &p.bytes {
                    Ok(bytes) => vec![
                        p.n.to_string(),
                        p.scenario.to_string(),
                        bytes_cell(*bytes),
                        format!("{:.1}", *bytes as f64 / p.n.max(1) as f64),
                    ],
                    Err(why) => vec![
                        p.n.to_string(),
                        p.scenario.to_string(),
                        one_line(why),
                        "-".into(),
                    ],
                })
                .collect(),
        });
    }
}

/// Where a scenario's heap plot is written, relative to the report folder.
pub fn heap_plot_path(scenario: &str) -> String {
    format!("plots/heap_{scenario}.svg")
}

/// The scaling charts: (path relative to the report folder, caption, names of their series).
pub(super) const SCALING_CHARTS: [(&str, &str, &[&str]); 3] = [
    (
        "plots/scaling_idle.svg",
        "Live bytes of N idle sessions against N (log-log), with the 4 KiB per session target",
        &["idle_bytes_per_session"],
    ),
    (
        "plots/scaling_mailbox.svg",
        "Peaks above baseline of SELECT, FETCH FULL and SEARCH against the mailbox's emails (log-log)",
        &[
            "select_peak_bytes_per_email",
            "fetch_full_peak_bytes_per_email",
            "search_meta_peak_bytes_per_email",
            "search_body_peak_bytes_per_email",
        ],
    ),
    (
        "plots/scaling_index.svg",
        "Index bytes of a selected mailbox against its emails (log-log), with the 64 B per email target",
        &["index_bytes_per_email"],
    ),
];

pub(super) fn document(entries: &[Entry], plot_notes: &[String]) -> Vec<Block> {
    let series = scaling_series(entries);
    let mut blocks = vec![
        Block::Heading(1, "imapsim report".into()),
        Block::Paragraph(format!(
            "{} scenario runs: {} ok, {} over budget or with wrong answers, {} failed. Figures are the \
             server host's heap in bytes, counted by the allocator, one seed each (a seed replays its run; a few \
             scenarios still differ by some bytes of peak between runs); latencies in simulated microseconds. \"above baseline\" is the highest peak of \
             the scenario's measured steps minus the live bytes just before the step; \"target\" is the \
             issue's target for it; \"budget\" is the scenario's row in budgets.toml (none: no row).",
            entries.len(),
            entries.iter().filter(|e| e.is_ok()).count(),
            entries.iter().filter(|e| e.result.is_ok() && !e.is_ok()).count(),
            entries.iter().filter(|e| e.result.is_err()).count(),
        )),
        Block::Heading(2, "Figures against budgets and targets".into()),
        Block::Table {
            header: TABLE_HEADER.map(String::from).to_vec(),
            rows: entries.iter().map(table_row).collect(),
        },
        Block::Heading(2, "Beside the reference servers' published figures".into()),
        Block::Paragraph(
            "The reference figures are process RSS (resident memory of the whole process, binary and \
             allocator slack included) measured on a real machine; imapsim's are heap bytes of the server \
             host above the live bytes before the step, counted exactly in a simulation. They are not the \
             same measure: compare orders of magnitude."
                .into(),
        ),
        Block::Table {
            header: vec![
                "experiment".into(),
                "imapsim (measured)".into(),
                "imapsim target".into(),
                "Aerogramme (published)".into(),
                "Dovecot".into(),
            ],
            rows: reference_rows(entries, &series),
        },
        Block::Links(
            REFERENCE_LINKS
                .iter()
                .map(|(text, url)| (text.to_string(), url.to_string()))
                .collect(),
        ),
        Block::Heading(2, "Scaling".into()),
        Block::Paragraph(format!(
            "How cost grows: idle sessions for N in {{10, 100, 1k, 10k}}; SELECT, FETCH FULL and SEARCH \
             on INBOXes of 100, 1k and 10k emails of {} B each; and the index of a selected mailbox (live \
             bytes with INBOX selected minus unselected). Each slope is the least-squares line through the \
             measured points (bytes per session or per email); figures.json gives it as `slopes` on each \
             point's object.",
            SCALE_EMAIL_BYTES
        )),
    ];
    for (path, caption, _) in SCALING_CHARTS {
        blocks.push(Block::Image(path.to_string(), caption.to_string()));
    }
    series_blocks(&series, &mut blocks);
    blocks.push(Block::Heading(2, "Heap over simulated time".into()));
    blocks.push(Block::Paragraph(
        "Each scenario's server live heap, sampled every 10 ms of simulated time, with its phases \
         marked (a labelled line at each start; the red segments are each phase's exact peak; measured \
         phases shaded). A long preload gets a second panel on what follows it."
            .into(),
    ));
    let mut without = Vec::new();
    for entry in entries {
        match entry.report() {
            Some(r) if !r.samples.is_empty() => blocks.push(Block::Image(
                heap_plot_path(&entry.scenario),
                format!("{} (seed {})", entry.scenario, entry.seed),
            )),
            Some(_) => without.push(entry.scenario.clone()),
            None => {}
        }
    }
    if !without.is_empty() {
        blocks.push(Block::Paragraph(format!(
            "No heap sampler in: {}.",
            without.join(", ")
        )));
    }
    let mut problems = Vec::new();
    for entry in entries {
        match &entry.result {
            Err(error) => problems.push(format!(
                "{} (seed {}): FAILED: {}",
                entry.scenario,
                entry.seed,
                one_line(error)
            )),
            Ok((report, verdict)) => {
                let name = &entry.scenario;
                if report.scenario != *name {
                    problems.push(format!(
                        "{name}: its report names another scenario, {}",
                        report.scenario
                    ));
                }
                if let Verdict::Over(message) = verdict {
                    problems.push(format!("{name}: {}", one_line(message)));
                }
                for failure in &report.failures {
                    problems.push(format!("{name}: {}", one_line(failure)));
                }
            }
        }
    }
    problems.extend(plot_notes.iter().cloned());
    if !problems.is_empty() {
        blocks.push(Block::Heading(2, "Failures".into()));
        blocks.push(Block::List(problems));
    }
    blocks
}
