//! The emails both servers get: the corpus (bare LF made CRLF) and the seeded generated MIME trees.

use std::path::{Path, PathBuf};

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use crate::gen;
use crate::imap_client::to_crlf;

/// The corpus of emails, shared with the server's tests.
pub const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../server/tests/data/emails");
/// How many emails the generator draws.
pub const GENERATED: usize = 300;
/// The generator's seed (ChaCha, 32 bytes): the same emails on every run.
pub const SEED: &[u8; 32] = b"imapsim dovecot differential #1 ";

pub struct Email {
    /// `corpus/dir/name` or `generated/N`.
    pub name: String,
    pub bytes: Vec<u8>,
}

pub fn corpus() -> Vec<Email> {
    let mut out = Vec::new();
    for dir in ["rfc", "thirdparty", "dxflrs", "malformed"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(Path::new(CORPUS).join(dir))
            .expect("the corpus is in server/tests/data/emails")
            .map(|e| e.expect("readable directory entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        files.sort();
        for f in files {
            let stem = f
                .file_stem()
                .expect("a file name")
                .to_string_lossy()
                .into_owned();
            let raw = std::fs::read(&f).expect("readable email");
            out.push(Email {
                name: format!("corpus/{dir}/{stem}"),
                bytes: to_crlf(&raw),
            });
        }
    }
    out
}

pub fn generated() -> Vec<Email> {
    let config = Config {
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, SEED));
    let strategy = (gen::head(), gen::tree());
    (0..GENERATED)
        .map(|n| {
            let (head, tree) = strategy
                .new_tree(&mut runner)
                .expect("the strategy always draws")
                .current();
            Email {
                name: format!("generated/{n:03}"),
                bytes: gen::render(&head, &tree, n),
            }
        })
        .collect()
}
