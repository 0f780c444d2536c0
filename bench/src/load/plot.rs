//! SVG plots of resident memory over wall-clock time (plotters' SVG backend): one line per run,
//! each starting at its own zero, with the measured phase's start and end as thin vertical lines.

use std::path::Path;

use plotters::prelude::*;

use super::{LoadError, LoadRun};

/// Plot size in pixels.
const SIZE: (u32, u32) = (960, 540);

/// Line colours, one per run in order.
const COLOURS: [RGBColor; 4] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
];

/// Draws the RSS series of `runs` (labelled by server) into the SVG file `path`.
pub fn memory_svg(path: &Path, title: &str, runs: &[&LoadRun]) -> Result<(), LoadError> {
    draw(path, title, runs).map_err(|reason| LoadError::Plot {
        path: path.to_path_buf(),
        reason,
    })
}

fn draw(path: &Path, title: &str, runs: &[&LoadRun]) -> Result<(), String> {
    let mib = |b: u64| b as f64 / workload::MIB as f64;
    let x_max = runs
        .iter()
        .flat_map(|r| r.series.samples.last())
        .map(|s| s.ms as f64 / 1000.0)
        .fold(0.1, f64::max);
    let y_max = runs
        .iter()
        .flat_map(|r| &r.series.samples)
        .map(|s| mib(s.rss_bytes))
        .fold(1.0, f64::max)
        * 1.1;
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("seconds since the run started")
        .y_desc("resident memory (MiB, process tree)")
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, run) in runs.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let points: Vec<(f64, f64)> = run
            .series
            .samples
            .iter()
            .map(|s| (s.ms as f64 / 1000.0, mib(s.rss_bytes)))
            .collect();
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(format!(
                "{} (peak {:.1} MiB, +{:.1} MiB above baseline)",
                run.report.server,
                mib(run.report.server_peak_bytes),
                mib(run.report.above_baseline_bytes)
            ))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
        for mark in run
            .series
            .marks
            .iter()
            .filter(|m| m.name == "measure_start" || m.name == "measure_end")
        {
            let x = mark.sample.ms as f64 / 1000.0;
            chart
                .draw_series(LineSeries::new(
                    vec![(x, 0.0), (x, y_max)],
                    colour.mix(0.4).stroke_width(1),
                ))
                .map_err(|e| e.to_string())?;
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::rss::{Mark, Sample, Series};
    use crate::load::LoadReport;

    fn run(server: &str, rss: &[u64]) -> LoadRun {
        let samples: Vec<Sample> = rss
            .iter()
            .enumerate()
            .map(|(i, &rss_bytes)| Sample {
                ms: i as u64 * 50,
                rss_bytes,
                cpu_ticks: 0,
                processes: 1,
            })
            .collect();
        let marks = vec![Mark {
            name: "measure_start".into(),
            sample: samples[1],
            pss_bytes: 0,
        }];
        LoadRun {
            report: LoadReport {
                scenario: "demo".into(),
                seed: 1,
                server_peak_bytes: rss.iter().copied().max().unwrap_or(0),
                server_live_end_bytes: 0,
                server_allocs: 0,
                server_alloc_bytes: 0,
                commands: 0,
                unexpected: 0,
                p50_us: 0,
                p99_us: 0,
                unparsable: 0,
                mismatches: 0,
                max_us: 0,
                above_baseline_bytes: 0,
                per_idle_session_bytes: None,
                budget_ok: true,
                server: server.into(),
                baseline_bytes: 0,
                baseline_pss_bytes: 0,
                per_idle_session_pss_bytes: None,
                p90_us: 0,
                cpu_ms: 0,
                measured_cpu_ms: 0,
                answered: 0,
                broken: 0,
                elapsed_ms: 0,
                measured_ms: 0,
                processes_max: 1,
                timed_out: false,
                sampled: true,
                figures: Default::default(),
                failures: Vec::new(),
                measured_phases: Vec::new(),
            },
            series: Series { samples, marks },
        }
    }

    #[test]
    fn memory_plot_is_an_svg_with_one_labelled_line_per_server() {
        let dir = std::env::temp_dir().join(format!("imapsim-plot-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("memory.svg");
        let (a, b) = (
            run("imapsim", &[10 << 20, 12 << 20, 11 << 20]),
            run("dovecot", &[20 << 20, 30 << 20]),
        );
        memory_svg(&path, "demo: resident memory", &[&a, &b]).expect("plot");
        let svg = std::fs::read_to_string(&path).expect("written");
        assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
        assert!(svg.contains("imapsim (peak 12.0 MiB"));
        assert!(svg.contains("dovecot (peak 30.0 MiB"));
        assert!(
            svg.matches("<polyline").count() >= 4,
            "two lines and two marks"
        );
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
