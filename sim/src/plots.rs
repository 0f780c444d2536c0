//! The report's SVG plots, drawn with plotters' SVG backend (text as `<text>` elements, no fonts):
//! a scenario's server heap over simulated time with its phases marked, and scaling curves.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::figures::{Phase, Report};

/// Width of every plot, in pixels.
pub const WIDTH_PX: u32 = 960;
/// Height of one panel, in pixels.
pub const PANEL_HEIGHT_PX: u32 = 400;
/// Most points a heap line keeps (longer series are reduced to each bucket's low and high).
pub const LINE_POINTS_MAX: usize = 2_000;
/// A preload longer than this share of the run (in percent) gets a second panel after it.
const ZOOM_PRELOAD_PERCENT: u64 = 50;
/// Label rows at the top of a heap panel, so that labels of short phases do not overlap.
const LABEL_ROWS: usize = 3;

/// Plot errors.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// plotters failed to draw (its SVG backend writes to a string, so this is a bug or a bad range).
    #[error("cannot draw {chart}: {message}")]
    Draw {
        /// Which chart.
        chart: String,
        /// plotters' error.
        message: String,
    },
}

fn draw_error<E: std::fmt::Display>(chart: &str) -> impl Fn(E) -> PlotError + '_ {
    move |e| PlotError::Draw {
        chart: chart.to_string(),
        message: e.to_string(),
    }
}

/// Bytes as a short human figure: `512 B`, `3.2 KiB`, `1.50 MiB`, `2.0 GiB`.
pub fn human_bytes(bytes: f64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes.abs() < 1024.0 {
        return format!("{bytes:.0} B");
    }
    let mut value = bytes / 1024.0;
    let mut unit = 0;
    while value.abs() >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if value.abs() >= 100.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else if value.abs() >= 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.2} {}", UNITS[unit])
    }
}

/// Bytes in decimal units, for log axes whose ticks fall on powers of ten: `100 B`, `10 kB`, `1 MB`.
pub fn decimal_bytes(bytes: f64) -> String {
    const UNITS: [(f64, &str); 4] = [(1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")];
    for (scale, unit) in UNITS {
        if bytes.abs() >= scale {
            let value = bytes / scale;
            return if (value - value.round()).abs() < 1e-9 {
                format!("{value:.0} {unit}")
            } else {
                format!("{value:.1} {unit}")
            };
        }
    }
    format!("{bytes:.0} B")
}

/// Reduces `samples` (sorted by time) to at most about `max_points` points: each of `max_points / 2`
/// buckets keeps its lowest and highest sample, in time order, so peaks survive.
pub fn envelope(samples: &[(u64, u64)], max_points: usize) -> Vec<(u64, u64)> {
    let buckets = (max_points / 2).max(1);
    if samples.len() <= max_points {
        return samples.to_vec();
    }
    let per_bucket = samples.len().div_ceil(buckets);
    let mut out = Vec::with_capacity(2 * buckets);
    for chunk in samples.chunks(per_bucket) {
        let low = chunk
            .iter()
            .enumerate()
            .min_by_key(|(_, s)| s.1)
            .map(|(i, _)| i);
        let high = chunk
            .iter()
            .enumerate()
            .max_by_key(|(_, s)| s.1)
            .map(|(i, _)| i);
        if let (Some(low), Some(high)) = (low, high) {
            out.push(chunk[low.min(high)]);
            if low != high {
                out.push(chunk[low.max(high)]);
            }
        }
    }
    out
}

/// The server's live heap of `report` over simulated time: the sampled line, each phase's exact
/// peak as a segment, phase boundaries as labelled lines, measured phases shaded. A run whose
/// preload takes most of its time gets a second panel zoomed on what follows the preload.
/// `None` when the scenario records no samples.
pub fn heap_over_time(report: &Report) -> Result<Option<String>, PlotError> {
    if report.samples.is_empty() {
        return Ok(None);
    }
    let chart = format!("heap of {}", report.scenario);
    let end_ms = report
        .samples
        .last()
        .map(|s| s.0)
        .into_iter()
        .chain(report.phases.iter().map(|p| p.end_ms))
        .max()
        .unwrap_or(0)
        .max(1);
    let zoom_from_ms = report
        .phase("preload")
        .filter(|p| p.end_ms * 100 > end_ms * ZOOM_PRELOAD_PERCENT)
        .map(|p| p.end_ms);
    let panels = if zoom_from_ms.is_some() { 2 } else { 1 };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH_PX, PANEL_HEIGHT_PX * panels))
            .into_drawing_area();
        root.fill(&WHITE).map_err(draw_error(&chart))?;
        let areas = root.split_evenly((panels as usize, 1));
        let title = format!(
            "{} (seed {}): server live heap over simulated time",
            report.scenario, report.seed
        );
        heap_panel(&areas[0], report, &title, 0, end_ms).map_err(draw_error(&chart))?;
        if let (Some(from_ms), Some(area)) = (zoom_from_ms, areas.get(1)) {
            // A little of the preload's end for context.
            let margin_ms = ((end_ms - from_ms) / 20).max(10);
            let title = format!("{}: after the preload", report.scenario);
            heap_panel(
                area,
                report,
                &title,
                from_ms.saturating_sub(margin_ms),
                end_ms,
            )
            .map_err(draw_error(&chart))?;
        }
        root.present().map_err(draw_error(&chart))?;
    }
    Ok(Some(svg))
}

type PanelResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;

fn heap_panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    report: &Report,
    title: &str,
    from_ms: u64,
    to_ms: u64,
) -> PanelResult {
    let visible = |p: &Phase| p.end_ms >= from_ms && p.start_ms <= to_ms;
    // The last sample before the window starts the line at its left edge.
    let first = report
        .samples
        .iter()
        .rposition(|s| s.0 < from_ms)
        .unwrap_or(0);
    let window: Vec<(u64, u64)> = report.samples[first..]
        .iter()
        .copied()
        .filter(|s| s.0 <= to_ms)
        .collect();
    let line = envelope(&window, LINE_POINTS_MAX);
    let y_max = line
        .iter()
        .map(|s| s.1)
        .chain(
            report
                .phases
                .iter()
                .filter(|p| visible(p))
                .map(|p| p.server_peak_bytes),
        )
        .max()
        .unwrap_or(0)
        .max(1024) as f64
        * 1.25;
    let seconds = |ms: u64| ms as f64 / 1000.0;
    let (x0, x1) = (seconds(from_ms), seconds(to_ms.max(from_ms + 1)));
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(x0..x1, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("simulated time (s)")
        .y_desc("server live heap")
        .y_label_formatter(&|v| human_bytes(*v))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    let measured = |p: &Phase| report.measured_phases.contains(&p.name);
    // Measured phases shaded.
    chart.draw_series(
        report
            .phases
            .iter()
            .filter(|p| visible(p) && measured(p))
            .map(|p| {
                Rectangle::new(
                    [
                        (seconds(p.start_ms.max(from_ms)), 0.0),
                        (seconds(p.end_ms.min(to_ms)), y_max),
                    ],
                    RED.mix(0.08).filled(),
                )
            }),
    )?;
    // Phase boundaries with their names, on staggered rows.
    let gray = BLACK.mix(0.35);
    for (i, phase) in report.phases.iter().enumerate().filter(|(_, p)| visible(p)) {
        let x = seconds(phase.start_ms.max(from_ms));
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(x, 0.0), (x, y_max)],
            gray.stroke_width(1),
        )))?;
        let row = (i % LABEL_ROWS) as f64;
        let y = y_max * (0.97 - 0.05 * row);
        // Labels of phases starting in the right quarter end at their line, not past the edge.
        let (text, anchor) = if (x - x0) > 0.75 * (x1 - x0) {
            (format!("{} ", phase.name), HPos::Right)
        } else {
            (format!(" {}", phase.name), HPos::Left)
        };
        chart.draw_series(std::iter::once(Text::new(
            text,
            (x, y),
            ("sans-serif", 12)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(anchor, VPos::Top)),
        )))?;
    }
    // Each phase's exact peak (from the counting allocator, not the sampler).
    chart
        .draw_series(report.phases.iter().filter(|p| visible(p)).map(|p| {
            PathElement::new(
                vec![
                    (seconds(p.start_ms.max(from_ms)), p.server_peak_bytes as f64),
                    (seconds(p.end_ms.min(to_ms)), p.server_peak_bytes as f64),
                ],
                RED.stroke_width(2),
            )
        }))?
        .label("phase peak (exact)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
    chart
        .draw_series(LineSeries::new(
            line.iter().map(|&(ms, bytes)| (seconds(ms), bytes as f64)),
            BLUE.stroke_width(1),
        ))?
        .label(format!(
            "live heap (sampled every {} ms)",
            crate::scenarios::workloads::SAMPLE_PERIOD_MS
        ))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    // Lower right: phase labels take the top of the panel.
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.5))
        .draw()?;
    Ok(())
}

/// One curve of a scaling chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Curve {
    /// Legend text.
    pub label: String,
    /// (x, y) points, x ascending; points with x or y ≤ 0 are left out (log axes).
    pub points: Vec<(f64, f64)>,
    /// A target or reference line (drawn thinner, without markers).
    pub reference: bool,
}

/// Curves on log-log axes: `y_desc` in bytes against `x_desc`.
pub fn scaling_chart(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    curves: &[Curve],
) -> Result<String, PlotError> {
    let positive = |c: &Curve| -> Vec<(f64, f64)> {
        c.points
            .iter()
            .copied()
            .filter(|&(x, y)| x > 0.0 && y > 0.0)
            .collect()
    };
    let all: Vec<(f64, f64)> = curves.iter().flat_map(positive).collect();
    let fold = |f: fn(f64, f64) -> f64, start: f64, pick: fn(&(f64, f64)) -> f64| {
        all.iter().map(pick).fold(start, f)
    };
    let (x_min, x_max) = (
        fold(f64::min, f64::INFINITY, |p| p.0),
        fold(f64::max, 0.0, |p| p.0),
    );
    let (y_min, y_max) = (
        fold(f64::min, f64::INFINITY, |p| p.1),
        fold(f64::max, 0.0, |p| p.1),
    );
    let (x_min, x_max) = if all.is_empty() {
        (1.0, 10.0)
    } else {
        (x_min / 2.0, x_max * 2.0)
    };
    let (y_min, y_max) = if all.is_empty() {
        (1.0, 1024.0)
    } else {
        ((y_min / 4.0).max(1.0), y_max * 4.0)
    };
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (WIDTH_PX, PANEL_HEIGHT_PX + 80)).into_drawing_area();
        let e = draw_error(title);
        root.fill(&WHITE).map_err(&e)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d((x_min..x_max).log_scale(), (y_min..y_max).log_scale())
            .map_err(&e)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| decimal_bytes(*v))
            .draw()
            .map_err(&e)?;
        for (i, curve) in curves.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let points = positive(curve);
            let width = if curve.reference { 1 } else { 2 };
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color
                        .mix(if curve.reference { 0.5 } else { 1.0 })
                        .stroke_width(width),
                ))
                .map_err(&e)?
                .label(curve.label.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(width))
                });
            if !curve.reference {
                chart
                    .draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))
                    .map_err(&e)?;
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.5))
            .draw()
            .map_err(&e)?;
        root.present().map_err(&e)?;
    }
    Ok(svg)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::alloc::Figures;
    use crate::harness::RunFigures;
    use std::collections::BTreeMap;

    /// Checks that `svg` is well-formed XML with an `<svg>` root; returns its text contents.
    pub(crate) fn well_formed_texts(svg: &str) -> Vec<String> {
        use quick_xml::events::Event;
        let mut reader = quick_xml::Reader::from_str(svg);
        let mut depth = 0usize;
        let mut root = None;
        let mut texts = Vec::new();
        let mut in_text = false;
        loop {
            match reader.read_event().expect("well-formed XML") {
                Event::Start(tag) => {
                    let name = String::from_utf8_lossy(tag.name().as_ref()).to_string();
                    if depth == 0 {
                        root = Some(name.clone());
                    }
                    in_text = name == "text";
                    depth += 1;
                }
                Event::End(_) => {
                    depth = depth.checked_sub(1).expect("no end tag without a start");
                    in_text = false;
                }
                Event::Empty(tag) if depth == 0 => {
                    root = Some(String::from_utf8_lossy(tag.name().as_ref()).to_string());
                }
                Event::Text(text) if in_text => {
                    texts.push(text.unescape().expect("valid text").trim().to_string());
                }
                Event::Eof => break,
                _ => {}
            }
        }
        assert_eq!(depth, 0, "every element is closed");
        assert_eq!(root.as_deref(), Some("svg"));
        texts
    }

    fn report_with_samples(samples: Vec<(u64, u64)>) -> Report {
        let run = RunFigures {
            server: Figures::default(),
            fakes3: Figures::default(),
            clients: Figures::default(),
            harness: Figures::default(),
            sim_elapsed: std::time::Duration::from_millis(1000),
            unaccounted_allocs: 0,
        };
        let phase = |name: &str, start_ms, end_ms, peak| Phase {
            name: name.to_string(),
            server_peak_bytes: peak,
            server_live_end_bytes: 1000,
            server_allocs: 1,
            server_live_start_bytes: 1000,
            start_ms,
            end_ms,
        };
        let mut report = Report::build(
            "demo",
            3,
            &run,
            &BTreeMap::new(),
            vec![
                phase("preload", 0, 800, 50_000),
                phase("session", 800, 900, 20_000),
                phase("fetch", 900, 1000, 90_000),
            ],
        );
        report.measured_phases = vec!["fetch".to_string()];
        report.samples = samples;
        report
    }

    #[test]
    fn heap_plot_is_well_formed_svg_with_every_phase_labelled_and_a_zoom_panel() {
        let samples: Vec<(u64, u64)> = (1..=100).map(|i| (i * 10, 1000 + (i % 7) * 500)).collect();
        let svg = heap_over_time(&report_with_samples(samples))
            .expect("draws")
            .expect("has samples");
        let texts = well_formed_texts(&svg);
        for phase in ["preload", "session", "fetch"] {
            assert!(
                texts.iter().any(|t| t == phase),
                "no label {phase} in {texts:?}"
            );
        }
        // The preload takes 80% of the run: a second panel zooms on what follows.
        assert!(
            texts.iter().any(|t| t.contains("after the preload")),
            "{texts:?}"
        );
        assert!(svg.contains("<polyline"), "the heap line is drawn");
    }

    #[test]
    fn heap_plot_of_a_run_without_samples_is_none() {
        assert!(heap_over_time(&report_with_samples(Vec::new()))
            .expect("nothing to draw")
            .is_none());
    }

    #[test]
    fn heap_plots_of_one_report_are_identical() {
        let samples: Vec<(u64, u64)> = (1..=50).map(|i| (i * 20, i * 100)).collect();
        let report = report_with_samples(samples);
        assert_eq!(
            heap_over_time(&report).expect("draws"),
            heap_over_time(&report).expect("draws")
        );
    }

    #[test]
    fn envelope_keeps_the_peak_and_bounds_the_point_count() {
        let mut samples: Vec<(u64, u64)> = (0..10_000).map(|i| (i, 100)).collect();
        samples[6_543].1 = 9_999;
        samples[1_234].1 = 1;
        let reduced = envelope(&samples, 200);
        assert!(reduced.len() <= 200, "{} points", reduced.len());
        assert!(reduced.contains(&(6_543, 9_999)));
        assert!(reduced.contains(&(1_234, 1)));
        assert!(reduced.windows(2).all(|w| w[0].0 < w[1].0), "time order");
        assert_eq!(envelope(&samples[..10], 200), samples[..10].to_vec());
    }

    #[test]
    fn scaling_chart_is_well_formed_svg_with_its_legend() {
        let curves = [
            Curve {
                label: "measured".into(),
                points: vec![(10.0, 5_000.0), (100.0, 50_000.0), (1000.0, 0.0)],
                reference: false,
            },
            Curve {
                label: "target".into(),
                points: vec![(10.0, 4_096.0), (1000.0, 409_600.0)],
                reference: true,
            },
        ];
        let svg = scaling_chart("idle", "sessions", "bytes", &curves).expect("draws");
        let texts = well_formed_texts(&svg);
        assert!(texts.iter().any(|t| t == "measured"), "{texts:?}");
        assert!(texts.iter().any(|t| t == "target"), "{texts:?}");
        assert_eq!(
            svg.matches("<circle").count(),
            2,
            "one marker per positive point"
        );
        // No curve at all still draws axes.
        well_formed_texts(&scaling_chart("empty", "x", "y", &[]).expect("draws"));
    }

    #[test]
    fn human_bytes_picks_a_unit() {
        assert_eq!(human_bytes(512.0), "512 B");
        assert_eq!(human_bytes(3.0 * 1024.0), "3.00 KiB");
        assert_eq!(human_bytes(1.5 * 1024.0 * 1024.0), "1.50 MiB");
        assert_eq!(human_bytes(300.0 * 1024.0 * 1024.0), "300 MiB");
        assert_eq!(decimal_bytes(100.0), "100 B");
        assert_eq!(decimal_bytes(10_000.0), "10 kB");
        assert_eq!(decimal_bytes(1_500_000.0), "1.5 MB");
    }
}
