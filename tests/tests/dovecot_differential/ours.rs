//! Our server on loopback (as in server/tests/imap_loopback.rs), with small chunks.

use std::net::SocketAddr;

use server::config::Limits;

pub const OUR_USER: &str = "alice";
pub const OUR_PASSWORD: &str = "alice-pw";

pub async fn start_ours() -> SocketAddr {
    // Small chunks, so that sections spanning chunk borders are exercised.
    let limits = Limits {
        chunk_bytes: 1024,
        ..Limits::default()
    };
    tests::loopback::start(OUR_USER, OUR_PASSWORD, limits, "test")
        .await
        .imap
}
