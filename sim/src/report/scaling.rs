//! The scaling series of the report (figures of scenarios against their N) and their
//! least-squares fits.

use super::entry::Entry;
use crate::budget::Budgets;
use crate::figures::Report;

/// A least-squares line through points.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fit {
    /// Bytes per unit of x.
    pub slope: f64,
    /// Bytes at x = 0.
    pub intercept: f64,
}

/// The least-squares line through `points`; `None` with fewer than two distinct x.
pub fn least_squares(points: &[(f64, f64)]) -> Option<Fit> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    if sxx == 0.0 {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    let slope = sxy / sxx;
    Some(Fit {
        slope,
        intercept: mean_y - slope * mean_x,
    })
}

/// A scaling series: which scenarios are its points and which figure of theirs it follows.
pub struct SeriesSpec {
    /// Key in figures.json's `slopes` (`idle_bytes_per_session`...).
    pub name: &'static str,
    /// What it measures, for the report.
    pub title: &'static str,
    /// Unit of x, singular (`session`, `email`).
    pub unit: &'static str,
    /// Its points: (scenario, x).
    pub points: Vec<(&'static str, u64)>,
    /// The figure, in bytes, from a point's report.
    pub value: fn(&Report) -> Option<u64>,
    /// The target, in bytes per unit of x, if there is one.
    pub target_per_unit: Option<u64>,
}

/// Bytes held by the idle sessions of an idle scenario: the server's live bytes after its
/// "idle" phase (every session logged in, INBOX selected, in IDLE) minus before it.
pub fn idle_bytes(report: &Report) -> Option<u64> {
    let sessions = report.figures.get("idle_sessions").copied();
    match (
        report.phase("idle"),
        sessions,
        report.per_idle_session_bytes,
    ) {
        (Some(phase), _, _) => Some(
            phase
                .server_live_end_bytes
                .saturating_sub(phase.server_live_start_bytes),
        ),
        (None, Some(n), Some(per)) => Some(n * per),
        _ => None,
    }
}

fn figure(report: &Report, name: &str) -> Option<u64> {
    report.figures.get(name).copied()
}

/// The points of a scaling series: `{prefix}_100`, `_1k` and `_10k` on that many emails.
fn mailbox_points(prefix: &str) -> Vec<(&'static str, u64)> {
    [(100, "100"), (1_000, "1k"), (10_000, "10k")]
        .iter()
        .filter_map(|&(n, suffix)| {
            let name = format!("{prefix}_{suffix}");
            let scenario = crate::scenarios::find(&name).ok()?;
            Some((scenario.name, n))
        })
        .collect()
}

/// A target of budgets.toml: `pick` of the row of `scenario`.
fn budget_target(scenario: &str, pick: fn(&crate::budget::Budget) -> Option<u64>) -> Option<u64> {
    Budgets::builtin().ok()?.get(scenario).ok().and_then(pick)
}

/// The report's scaling series (issue #5, item 5).
pub fn series_specs() -> Vec<SeriesSpec> {
    vec![
        SeriesSpec {
            name: "idle_bytes_per_session",
            title: "live bytes of N sessions in IDLE (1-email INBOXes)",
            unit: "session",
            points: vec![
                ("idle_10", 10),
                ("idle_100", 100),
                ("idle_1k", 1_000),
                ("idle_10k", 10_000),
            ],
            value: idle_bytes,
            target_per_unit: budget_target("idle_1k", |b| b.target_bytes),
        },
        SeriesSpec {
            name: "select_peak_bytes_per_email",
            title: "SELECT INBOX: peak above baseline",
            unit: "email",
            points: mailbox_points("scale_select"),
            value: |r| figure(r, "select_above_baseline_bytes"),
            target_per_unit: None,
        },
        SeriesSpec {
            name: "fetch_full_peak_bytes_per_email",
            title: "FETCH 1:* FULL: peak above baseline",
            unit: "email",
            points: mailbox_points("scale_fetch_full"),
            value: |r| figure(r, "fetch_full_above_baseline_bytes"),
            target_per_unit: None,
        },
        SeriesSpec {
            name: "search_meta_peak_bytes_per_email",
            title: "SEARCH 1:* UNSEEN: peak above baseline",
            unit: "email",
            points: mailbox_points("scale_search"),
            value: |r| figure(r, "search_meta_above_baseline_bytes"),
            target_per_unit: None,
        },
        SeriesSpec {
            name: "search_body_peak_bytes_per_email",
            title: "SEARCH TEXT (every body read): peak above baseline",
            unit: "email",
            points: mailbox_points("scale_search"),
            value: |r| figure(r, "search_body_above_baseline_bytes"),
            target_per_unit: None,
        },
        SeriesSpec {
            name: "index_bytes_per_email",
            title: "index of the selected mailbox (live bytes selected minus unselected)",
            unit: "email",
            points: mailbox_points("scale_select"),
            value: |r| figure(r, "index_bytes"),
            target_per_unit: budget_target("scale_select_1k", |b| b.index_bytes_per_email_target),
        },
    ]
}

/// One point of a series.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// Its scenario.
    pub scenario: &'static str,
    /// x: sessions or emails.
    pub n: u64,
    /// The figure, or why there is none.
    pub bytes: Result<u64, String>,
}

/// A series as measured.
pub struct Series {
    /// Its definition.
    pub spec: SeriesSpec,
    /// Its points, in x order.
    pub points: Vec<Point>,
    /// The least-squares line through the measured points.
    pub fit: Option<Fit>,
}

/// The scaling series of `entries` (points whose scenario is absent say so).
pub fn scaling_series(entries: &[Entry]) -> Vec<Series> {
    series_specs()
        .into_iter()
        .map(|spec| {
            let points: Vec<Point> = spec
                .points
                .iter()
                .map(|&(scenario, n)| {
                    let bytes = match entries.iter().find(|e| e.scenario == scenario) {
                        None => Err("not run".to_string()),
                        Some(Entry { result: Err(e), .. }) => Err(format!("failed: {e}")),
                        Some(Entry {
                            result: Ok((report, _)),
                            ..
                        }) => (spec.value)(report).ok_or_else(|| "not measured".to_string()),
                    };
                    Point { scenario, n, bytes }
                })
                .collect();
            let measured: Vec<(f64, f64)> = points
                .iter()
                .filter_map(|p| p.bytes.as_ref().ok().map(|&b| (p.n as f64, b as f64)))
                .collect();
            Series {
                fit: least_squares(&measured),
                spec,
                points,
            }
        })
        .collect()
}

/// Rounds to two decimals (the slopes as figures.json and the tables show them).
pub(super) fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::sample_entries;

    #[test]
    fn least_squares_finds_the_slope_of_a_line_and_needs_two_distinct_x() {
        let fit = least_squares(&[(10.0, 1_030.0), (100.0, 10_030.0), (1_000.0, 100_030.0)])
            .expect("three points");
        assert!((fit.slope - 100.0).abs() < 1e-9, "{fit:?}");
        assert!((fit.intercept - 30.0).abs() < 1e-6, "{fit:?}");
        assert_eq!(least_squares(&[(1.0, 2.0)]), None);
        assert_eq!(least_squares(&[(5.0, 2.0), (5.0, 3.0)]), None);
        let noisy = least_squares(&[(0.0, 0.0), (1.0, 2.0), (2.0, 2.0), (3.0, 4.0)]).expect("fit");
        assert!((noisy.slope - 1.2).abs() < 1e-9, "{noisy:?}");
    }

    #[test]
    fn scaling_series_fit_measured_points_and_name_the_failed_ones() {
        let series = scaling_series(&sample_entries());
        let idle = series
            .iter()
            .find(|s| s.spec.name == "idle_bytes_per_session")
            .expect("idle series");
        let fit = idle.fit.expect("two measured points");
        assert!((fit.slope - 3_000.0).abs() < 1e-6, "{fit:?}");
        let failed = idle
            .points
            .iter()
            .find(|p| p.scenario == "idle_1k")
            .expect("idle_1k point");
        assert!(matches!(&failed.bytes, Err(e) if e.contains("Ran for duration")));
        let absent = idle.points.iter().find(|p| p.scenario == "idle_10k");
        assert_eq!(absent.map(|p| p.bytes.clone()), Some(Err("not run".into())));
        let index = series
            .iter()
            .find(|s| s.spec.name == "index_bytes_per_email")
            .expect("index series");
        assert!((index.fit.expect("two points").slope - 80.0).abs() < 1e-9);
    }
}
