//! Entropy inside and outside a simulation: the serving binary's keys and nonces are the
//! operating system's (two `imapsim serve` processes differ), a simulation's are its seed's, and
//! `imapsim run --check` names the first allocation that differs between two processes.

mod common;

use std::process::Command;

use common::EXE;

/// Starts `imapsim serve` on free ports, creates a mailbox and returns its UIDVALIDITY (drawn from
/// the server's entropy when the mailbox is created).
fn uidvalidity_of_a_new_mailbox() -> String {
    let serve = common::serve();
    let script = "a LOGIN carol carol-password\r\nb CREATE Work\r\nc SELECT Work\r\nd LOGOUT\r\n";
    let transcript = testkit::transcript(&serve.imap, script);
    drop(serve);
    let at = transcript
        .find("[UIDVALIDITY ")
        .unwrap_or_else(|| panic!("SELECT reports UIDVALIDITY:\n{transcript}"));
    let value = &transcript[at + "[UIDVALIDITY ".len()..];
    value[..value.find(']').expect("the code closes")].to_string()
}

#[test]
fn two_serving_processes_draw_different_random_material() {
    assert_ne!(
        uidvalidity_of_a_new_mailbox(),
        uidvalidity_of_a_new_mailbox()
    );
}

fn check(perturbed: bool) -> (bool, String) {
    let mut command = Command::new(EXE);
    command.args(["run", "idle_10", "--seed", "1", "--check"]);
    if perturbed {
        command.env(sim::harness::PERTURB_VARIABLE, "1");
    }
    let output = command.output().expect("imapsim run --check starts");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn check_finds_two_processes_identical() {
    let (identical, out) = check(false);
    assert!(identical, "{out}");
    assert!(out.contains("the same figures and the same"), "{out}");
}

#[test]
fn check_names_the_host_and_the_allocation_a_planted_nondeterminism_makes() {
    let (identical, out) = check(true);
    assert!(
        !identical,
        "the planted block differs between processes:\n{out}"
    );
    assert!(
        out.contains("first allocation that differs: host imap"),
        "{out}"
    );
    assert!(
        out.contains("sim::harness::imap_host"),
        "the backtrace names the function:\n{out}"
    );
}
