//! `figures.json`: one object per scenario run.

use std::collections::BTreeMap;

use serde::Serialize;

use super::entry::Entry;
use super::scaling::{round2, scaling_series};
use crate::figures::JsonReport;

/// One object of figures.json: the `run --json` keys, then the report's.
#[derive(Serialize)]
struct FigureObject<'a> {
    #[serde(flatten)]
    json: JsonReport<'a>,
    /// Idle scenarios: sessions in IDLE.
    #[serde(skip_serializing_if = "Option::is_none")]
    sessions: Option<u64>,
    /// Slopes of the scaling series this run is a point of, in bytes per unit, by series.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    slopes: BTreeMap<&'static str, f64>,
}

/// figures.json's object for a run that did not complete.
#[derive(Serialize)]
struct FailedObject<'a> {
    scenario: &'a str,
    seed: u64,
    error: &'a str,
}

/// Either object, serialised as itself (fields in declaration order).
#[derive(Serialize)]
#[serde(untagged)]
enum Object<'a> {
    Ran(FigureObject<'a>),
    Failed(FailedObject<'a>),
}

/// The `figures.json` array: one object per scenario run, with the keys of `imapsim run --json`
/// (among them `above_baseline_bytes`, `target_bytes`, `per_idle_session_bytes`), `sessions` for
/// idle scenarios and `slopes` for the points of scaling series; a run that did not complete is
/// `{scenario, seed, error}`.
pub fn figures_json(entries: &[Entry]) -> String {
    let series = scaling_series(entries);
    let objects: Vec<Object<'_>> = entries
        .iter()
        .map(|entry| match &entry.result {
            Ok((report, verdict)) => Object::Ran(FigureObject {
                json: JsonReport {
                    report,
                    budget_ok: verdict.budget_ok(),
                },
                sessions: report.figures.get("idle_sessions").copied(),
                slopes: series
                    .iter()
                    .filter(|s| s.points.iter().any(|p| p.scenario == entry.scenario))
                    .filter_map(|s| s.fit.map(|f| (s.spec.name, round2(f.slope))))
                    .collect(),
            }),
            Err(error) => Object::Failed(FailedObject {
                scenario: &entry.scenario,
                seed: entry.seed,
                error,
            }),
        })
        .collect();
    serde_json::to_string_pretty(&objects).expect("reports serialise")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::sample_entries;

    #[test]
    fn figures_json_has_one_object_per_run_with_the_run_json_keys_and_the_report_keys() {
        let text = figures_json(&sample_entries());
        assert!(
            text.starts_with("[\n  {\n    \"scenario\": \"demo\",\n    \"seed\": 9,"),
            "the keys keep run --json's order: {text}"
        );
        let json: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        let objects = json.as_array().expect("an array");
        assert_eq!(objects.len(), sample_entries().len());
        let demo = objects[0].as_object().expect("an object");
        for key in [
            "scenario",
            "seed",
            "server_peak_bytes",
            "server_live_end_bytes",
            "server_allocs",
            "server_alloc_bytes",
            "commands",
            "unexpected",
            "p50_us",
            "p99_us",
            "budget_ok",
            "above_baseline_bytes",
            "target_bytes",
            "per_idle_session_bytes",
        ] {
            assert!(demo.contains_key(key), "missing key {key}");
        }
        assert_eq!(demo["server_peak_bytes"], 100);
        assert_eq!(demo["budget_ok"], true);
        assert!(!demo.contains_key("sessions") && !demo.contains_key("slopes"));
        let idle = objects[1].as_object().expect("an object");
        assert_eq!(idle["sessions"], 10);
        assert_eq!(idle["per_idle_session_bytes"], 3_100);
        assert_eq!(idle["slopes"]["idle_bytes_per_session"], 3_000.0);
        assert_eq!(objects[3]["scenario"], "idle_1k");
        assert!(objects[3]["error"]
            .as_str()
            .expect("an error")
            .contains("Ran for duration"));
        assert_eq!(objects[4]["budget_ok"], false);
        assert_eq!(objects[4]["slopes"]["index_bytes_per_email"], 80.0);
    }
}
