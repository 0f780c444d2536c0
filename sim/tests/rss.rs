//! The memory an operator sees: `imapsim serve`'s resident set after 100 logins with production
//! argon2id parameters (19 MiB a derivation, 2 at once) stays within 2 x 19 MiB of what it was
//! before them. Without `server::listener::return_large_blocks_to_the_system` glibc kept the
//! blocks: 59 MiB more after 100 logins.

#![cfg(target_os = "linux")]

mod common;

use std::process::Child;

const LOGINS: usize = 100;
const KDF_BLOCK_BYTES: u64 = 19 << 20;

fn resident_bytes(child: &Child) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
        .expect("the server's /proc status is readable");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS is in the status");
    kib * 1024
}

fn login_and_logout(imap: &str) {
    let transcript = testkit::transcript(imap, "a LOGIN carol carol-password\r\nb LOGOUT\r\n");
    assert!(transcript.contains("a OK"), "{transcript}");
}

#[test]
fn resident_memory_after_many_logins_stays_within_two_key_derivations() {
    let serve = common::serve();
    let before = resident_bytes(&serve.child);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| (0..LOGINS / 2).for_each(|_| login_and_logout(&serve.imap)));
        }
    });
    let after = resident_bytes(&serve.child);
    drop(serve);
    assert!(
        after <= before + 2 * KDF_BLOCK_BYTES,
        "RSS {before} B before {LOGINS} logins, {after} B after (+{} B, more than 2 x 19 MiB)",
        after.saturating_sub(before)
    );
}
