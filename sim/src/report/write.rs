//! Writing the report's files into its folder.

use std::path::{Path, PathBuf};

use super::document::document;
use super::entry::Entry;
use super::figures_json::figures_json;
use super::plot_files::svg_plots;
use super::render::{render_html, render_markdown};

/// Where `imapsim report` writes: `$CARGO_TARGET_DIR/imapsim/report`, else the workspace's
/// `target/imapsim/report`.
pub fn output_dir() -> PathBuf {
    bench::output_root().join("report")
}

/// Report errors.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file or folder of the report could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// The files of a written report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    /// `index.html`.
    pub html: PathBuf,
    /// `report.md`.
    pub markdown: PathBuf,
    /// `figures.json`.
    pub figures: PathBuf,
    /// The SVG plots.
    pub plots: Vec<PathBuf>,
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `index.html`, `report.md`, `figures.json` and `plots/*.svg` into `dir` (SVGs left
/// there by an earlier report are removed first).
pub fn write(dir: &Path, entries: &[Entry]) -> Result<Written, ReportError> {
    let plots_dir = dir.join("plots");
    std::fs::create_dir_all(&plots_dir).map_err(io_error(&plots_dir))?;
    for old in std::fs::read_dir(&plots_dir).map_err(io_error(&plots_dir))? {
        let path = old.map_err(io_error(&plots_dir))?.path();
        if path.extension().is_some_and(|e| e == "svg") {
            std::fs::remove_file(&path).map_err(io_error(&path))?;
        }
    }
    let (svgs, notes) = svg_plots(entries);
    let mut plots_written = Vec::new();
    for (relative, svg) in svgs {
        let path = dir.join(relative);
        std::fs::write(&path, svg).map_err(io_error(&path))?;
        plots_written.push(path);
    }
    let blocks = document(entries, &notes);
    let written = Written {
        html: dir.join("index.html"),
        markdown: dir.join("report.md"),
        figures: dir.join("figures.json"),
        plots: plots_written,
    };
    std::fs::write(&written.html, render_html(&blocks)).map_err(io_error(&written.html))?;
    std::fs::write(&written.markdown, render_markdown(&blocks))
        .map_err(io_error(&written.markdown))?;
    std::fs::write(&written.figures, figures_json(entries) + "\n")
        .map_err(io_error(&written.figures))?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::sample_entries;

    #[test]
    fn write_puts_every_file_and_plot_in_the_folder_and_is_deterministic() {
        let dir = std::env::temp_dir().join(format!("imapsim-report-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("plots")).expect("temp dir");
        std::fs::write(dir.join("plots/heap_stale.svg"), "old").expect("stale plot");
        let entries = sample_entries();
        let written = write(&dir, &entries).expect("written");
        assert!(
            !dir.join("plots/heap_stale.svg").exists(),
            "stale plots removed"
        );
        for path in [&written.html, &written.markdown, &written.figures] {
            assert!(path.exists(), "{}", path.display());
        }
        let names: Vec<String> = written
            .plots
            .iter()
            .map(|p| {
                p.file_name()
                    .expect("a file")
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        for name in [
            "heap_demo.svg",
            "heap_idle_10.svg",
            "scaling_idle.svg",
            "scaling_mailbox.svg",
            "scaling_index.svg",
        ] {
            assert!(names.iter().any(|n| n == name), "{name} not in {names:?}");
        }
        for plot in &written.plots {
            let svg = std::fs::read_to_string(plot).expect("readable");
            crate::plots::tests::well_formed_texts(&svg);
        }
        let first = std::fs::read(&written.html).expect("html");
        write(&dir, &entries).expect("written again");
        assert_eq!(std::fs::read(&written.html).expect("html"), first);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
