//! The report (`imapsim report`): runs every scenario, each on its own thread under a wall-time
//! bound, and writes under `target/imapsim/report/` a table of every scenario's figures against
//! its budget and target beside the reference servers' published figures (`report.md`,
//! `index.html`), the scaling curves with their least-squares slopes, `figures.json` (one object
//! per scenario run) and SVG plots (`plots/`).
//!
//! Everything written is a function of the scenarios' reports: no wall clock reaches the files
//! (the wall time of each run is printed on the progress lines only).

mod blocks;
pub mod document;
pub mod entry;
pub mod figures_json;
#[cfg(test)]
mod fixtures;
pub mod plot_files;
mod references;
pub mod render;
pub mod run;
pub mod scaling;
pub mod tables;
pub mod write;

pub use entry::{Entry, Verdict};
pub use run::{run_all, RUN_BOUND_S_DEFAULT};
pub use tables::text_table;
pub use write::{output_dir, write, ReportError, Written};
