//! Benchmarking real IMAP servers over TCP, outside the simulation: the `workload` crate's
//! workloads on tokio sockets ([`driver`]), the resident memory and CPU time of the server's
//! process tree ([`load::rss`]), the Dovecot launcher ([`dovecot`]) and the side-by-side
//! comparison of imapsim's server with Dovecot ([`compare`]). Wall-clock time is read here.

pub mod compare;
pub mod dovecot;
pub mod driver;
pub mod load;

use std::path::{Path, PathBuf};

/// The workspace's output folder: `$CARGO_TARGET_DIR/imapsim`, else the workspace's
/// `target/imapsim`.
pub fn output_root() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
            manifest.parent().unwrap_or(manifest).join("target")
        });
    target.join("imapsim")
}
