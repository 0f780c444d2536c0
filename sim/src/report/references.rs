//! The comparison with the reference servers' published figures.

use std::fmt::Write as _;

use super::entry::Entry;
use super::scaling::Series;
use crate::plots;

/// A comparison with the reference servers' published figures.
struct Reference {
    experiment: &'static str,
    scenario: &'static str,
    /// Which figure of the scenario is compared.
    figure: &'static str,
    aerogramme: &'static str,
    dovecot: &'static str,
}

const REFERENCES: [Reference; 7] = [
    Reference {
        experiment: "IDLE: memory per idle user / connection",
        scenario: "idle_16",
        figure: "per idle session",
        aerogramme: "~2 MB RSS per user, linear in users (16 users in IDLE; \"1k users = 2 GB\") [1]; IDLE still keeps the whole user profile in memory after the rework [2]",
        dovecot: "~5 MB RSS per connection (one imap process each); 5-13 KiB per hibernated IDLE connection (imap-hibernate) [3]",
    },
    Reference {
        experiment: "FETCH 1:* FULL on 1k emails",
        scenario: "fetch_full",
        figure: "above baseline",
        aerogramme: "300 MB spike: the whole mailbox fetched before answering, and >1024 file descriptors [1]; ~40 MB after streaming, capped by the biggest email (25 MB x a small constant) [2]",
        dovecot: "-",
    },
    Reference {
        experiment: "SEARCH on body text, 1k emails",
        scenario: "search_body",
        figure: "above baseline",
        aerogramme: "same profile as FETCH FULL (~300 MB) [1]; ~40 MB after streaming [2]",
        dovecot: "-",
    },
    Reference {
        experiment: "SEARCH on metadata (the trace's SEARCH commands), 1k emails",
        scenario: "search_meta",
        figure: "above baseline",
        aerogramme: "~10 MB loaded for the request [1]",
        dovecot: "-",
    },
    Reference {
        experiment: "APPEND 100 emails x 16 users in parallel",
        scenario: "append_par",
        figure: "above baseline",
        aerogramme: "400 MB peak [1]",
        dovecot: "-",
    },
    Reference {
        experiment: "APPEND 100 emails x 16 users one after the other",
        scenario: "append_seq",
        figure: "above baseline",
        aerogramme: "spikes ~50 MB, ~25 MB between, ~18 MB at the end [1]",
        dovecot: "-",
    },
    Reference {
        experiment: "COPY then MOVE of 1k emails",
        scenario: "copy_move",
        figure: "above baseline",
        aerogramme: "< 25 MB (~40 s of CPU) [1]",
        dovecot: "-",
    },
];

pub(super) const REFERENCE_LINKS: [(&str, &str); 3] = [
    (
        "[1] Aerogramme, \"Does Aerogramme use too much memory?\" (2024-02-15): RSS of the Aerogramme process (psrecord), single-node Garage; the figures as summarised in shared/traces/SOURCE.md, whose dataset and trace imapsim replays",
        "https://aerogramme.deuxfleurs.fr/blog/2024-ram-usage-encryption-s3/",
    ),
    (
        "[2] Aerogramme's follow-up post on predictability (2024; source: git.deuxfleurs.fr/Deuxfleurs/aerogramme.deuxfleurs.fr, content/blog/2024-predictability-and-correctness/index.md): FETCH and SEARCH reworked to stream, \"used up to 40MB of RAM\"; IDLE keeps the whole user profile (shared/FACTS.md, \"The reference server\")",
        "https://aerogramme.deuxfleurs.fr/blog/2024-predictability-and-correctness/",
    ),
    (
        "[3] Dovecot: the figures issue #5 quotes; no published measurement of them is in shared/ and none was found, so read them as indicative. Dovecot's documentation of hibernation describes the mechanism, without figures",
        "https://doc.dovecot.org/configuration_manual/hibernation/",
    ),
];

pub(super) fn reference_rows(entries: &[Entry], series: &[Series]) -> Vec<Vec<String>> {
    REFERENCES
        .iter()
        .map(|reference| {
            let report = entries
                .iter()
                .find(|e| e.scenario == reference.scenario)
                .and_then(Entry::report);
            let measured = match report {
                None => format!(
                    "{}: not measured (run failed or absent)",
                    reference.scenario
                ),
                Some(r) => {
                    let bytes = if reference.figure == "per idle session" {
                        r.per_idle_session_bytes.unwrap_or(0)
                    } else {
                        r.above_baseline_bytes
                    };
                    let mut text = format!(
                        "{}: {} {} (heap)",
                        reference.scenario,
                        plots::human_bytes(bytes as f64),
                        reference.figure
                    );
                    if reference.scenario == "idle_16" {
                        if let Some(fit) = series
                            .iter()
                            .find(|s| s.spec.name == "idle_bytes_per_session")
                            .and_then(|s| s.fit)
                        {
                            let _ = write!(
                                text,
                                "; slope over idle_N: {} per session",
                                plots::human_bytes(fit.slope)
                            );
                        }
                    }
                    text
                }
            };
            let target = report.map_or("-".to_string(), |r| {
                plots::human_bytes(r.target_bytes as f64)
            });
            vec![
                reference.experiment.to_string(),
                measured,
                target,
                reference.aerogramme.to_string(),
                reference.dovecot.to_string(),
            ]
        })
        .collect()
}
