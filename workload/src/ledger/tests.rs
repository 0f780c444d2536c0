//! Tests of the client ledger.

use super::*;

fn listed(uid: u32, bytes: &[u8], flags: &[&str]) -> Listed {
    Listed {
        uid,
        flags: flags.iter().map(|f| flag_key(f)).collect(),
        modseq: uid as u64,
        digest: digest(bytes),
    }
}

fn listing(messages: Vec<Listed>) -> Listing {
    Listing {
        uidvalidity: 7,
        messages,
    }
}

#[test]
fn acknowledged_appends_must_be_there_once_with_their_flags() {
    let mut ledger = Ledger::new();
    ledger.add("INBOX", b"one", &["\\Seen"], Ack::Ok, Some(1), "APPEND 1");
    ledger.add("INBOX", b"two", &[], Ack::Ok, Some(2), "APPEND 2");
    ledger.check_listing(
        "INBOX",
        &listing(vec![listed(1, b"one", &["\\seen"]), listed(2, b"two", &[])]),
        2,
        "t",
    );
    assert_eq!(ledger.violation_count(), 0, "{:?}", ledger.violations());

    ledger.check_listing(
        "INBOX",
        &listing(vec![
            listed(1, b"one", &[]),
            listed(2, b"two", &[]),
            listed(3, b"two", &[]),
        ]),
        3,
        "t",
    );
    let text = ledger.violations().join("\n");
    assert!(text.contains("lacks flag \\seen"), "{text}");
    assert!(text.contains("2 times"), "{text}");
    assert!(text.contains("was told UID 2"), "{text}");
}

#[test]
fn refused_appends_must_be_absent_and_cut_off_ones_at_most_once() {
    let mut ledger = Ledger::new();
    ledger.add("INBOX", b"refused", &[], Ack::Refused, None, "APPEND r");
    ledger.add("INBOX", b"cut", &[], Ack::Unknown, None, "APPEND c");
    ledger.check_listing("INBOX", &listing(vec![listed(1, b"cut", &[])]), 1, "t");
    assert_eq!(ledger.violation_count(), 0, "{:?}", ledger.violations());
    ledger.check_listing("INBOX", &listing(vec![]), 0, "t");
    assert_eq!(ledger.violation_count(), 0);
    ledger.check_listing("INBOX", &listing(vec![listed(1, b"refused", &[])]), 1, "t");
    assert_eq!(ledger.violation_count(), 1);
    assert!(ledger.violations()[0].contains("was refused"));
}

#[test]
fn a_retry_that_succeeds_makes_the_message_required() {
    let mut ledger = Ledger::new();
    ledger.add("INBOX", b"m", &[], Ack::Refused, None, "APPEND m");
    ledger.add("INBOX", b"m", &[], Ack::Ok, None, "APPEND m (retry)");
    ledger.check_listing("INBOX", &listing(vec![]), 0, "t");
    assert_eq!(ledger.violation_count(), 1);
    assert!(ledger.violations()[0].contains("missing"));
}

#[test]
fn expunged_mail_stays_gone_and_uid_gaps_are_allowed_after_removals() {
    let mut ledger = Ledger::new();
    ledger.add("INBOX", b"a", &[], Ack::Ok, Some(1), "APPEND a");
    ledger.add("INBOX", b"b", &[], Ack::Ok, Some(2), "APPEND b");
    ledger.store(
        "INBOX",
        &[digest(b"a")],
        FlagOp::Add,
        &["\\Deleted"],
        Ack::Ok,
    );
    ledger.expunge("INBOX", None, Ack::Ok, "EXPUNGE");
    ledger.check_listing("INBOX", &listing(vec![listed(2, b"b", &[])]), 3, "t");
    assert_eq!(ledger.violation_count(), 0, "{:?}", ledger.violations());
    ledger.check_listing(
        "INBOX",
        &listing(vec![listed(1, b"a", &["\\deleted"]), listed(2, b"b", &[])]),
        3,
        "t",
    );
    assert!(ledger.violations()[0].contains("EXPUNGE expunged it"));
}

#[test]
fn uid_gaps_are_violations_when_nothing_was_removed() {
    let mut ledger = Ledger::new();
    ledger.add("INBOX", b"a", &[], Ack::Ok, None, "APPEND a");
    ledger.add("INBOX", b"b", &[], Ack::Ok, None, "APPEND b");
    ledger.check_listing(
        "INBOX",
        &listing(vec![listed(1, b"a", &[]), listed(3, b"b", &[])]),
        3,
        "t",
    );
    assert_eq!(ledger.violation_count(), 1);
    assert!(ledger.violations()[0].contains("UID gap"));
}

#[test]
fn failed_stores_leave_their_flags_unknown() {
    let mut ledger = Ledger::new();
    ledger.add("INBOX", b"a", &[], Ack::Ok, None, "APPEND a");
    ledger.store(
        "INBOX",
        &[digest(b"a")],
        FlagOp::Add,
        &["\\Flagged"],
        Ack::Refused,
    );
    ledger.check_listing(
        "INBOX",
        &listing(vec![listed(1, b"a", &["\\flagged"])]),
        2,
        "t",
    );
    ledger.check_listing("INBOX", &listing(vec![listed(1, b"a", &[])]), 2, "t");
    assert_eq!(ledger.violation_count(), 0, "{:?}", ledger.violations());
}

/// A ledger where message "a" was appended to INBOX, then moved (`is_move`) or copied to `to`
/// with the transfer refused.
fn refused_transfer_of_a(to: &str, is_move: bool, label: &str) -> Ledger {
    let mut ledger = Ledger::new();
    ledger.add("INBOX", b"a", &[], Ack::Ok, None, "APPEND a");
    ledger.transfer(
        "INBOX",
        to,
        &[digest(b"a")],
        is_move,
        Ack::Refused,
        None,
        label,
    );
    ledger
}

#[test]
fn a_failed_move_must_leave_each_message_somewhere() {
    let mut ledger = refused_transfer_of_a("Archive", true, "MOVE");
    let mut listings = BTreeMap::new();
    listings.insert("INBOX".to_string(), listing(vec![]));
    listings.insert("Archive".to_string(), listing(vec![]));
    ledger.check_moves(&listings);
    assert_eq!(ledger.violation_count(), 1);
    listings.insert("Archive".to_string(), listing(vec![listed(1, b"a", &[])]));
    let mut again = refused_transfer_of_a("Archive", true, "MOVE");
    again.check_moves(&listings);
    assert_eq!(again.violation_count(), 0);
}

#[test]
fn a_refused_copy_must_leave_the_destination_as_it_was() {
    let mut ledger = refused_transfer_of_a("Sent", false, "COPY");
    ledger.check_listing("Sent", &listing(vec![listed(1, b"a", &[])]), 1, "t");
    assert_eq!(ledger.violation_count(), 1);
}

#[test]
fn uidvalidity_and_highestmodseq_are_watched_across_selects() {
    let mut ledger = Ledger::new();
    let reply = |validity: u32, modseq: u64| Reply {
        responses: vec![
            format!("* OK [UIDVALIDITY {validity}] x\r\n").into_bytes(),
            format!("* OK [HIGHESTMODSEQ {modseq}] x\r\n").into_bytes(),
            b"A1 OK done\r\n".to_vec(),
        ],
        status: Some(Status::Ok),
    };
    ledger.observe_select("INBOX", &reply(5, 10), "t");
    ledger.observe_select("INBOX", &reply(5, 12), "t");
    assert_eq!(ledger.violation_count(), 0);
    ledger.observe_select("INBOX", &reply(6, 11), "t");
    assert_eq!(ledger.violation_count(), 2);
}

#[test]
fn the_heap_may_grow_by_the_tolerance_and_abandoned_connects_only() {
    let mut ledger = Ledger::new();
    ledger.check_heap("imap", 100_000, 100_000 + HEAP_TOLERANCE_BYTES, 0);
    assert_eq!(ledger.violation_count(), 0);
    ledger.check_heap("imap", 100_000, 100_001 + HEAP_TOLERANCE_BYTES, 0);
    assert_eq!(ledger.violation_count(), 1);
    let allowed = 100_000 + HEAP_TOLERANCE_BYTES + 3 * ABANDONED_CONNECT_BYTES;
    ledger.check_heap("imap", 100_000, allowed, 3);
    assert_eq!(ledger.violation_count(), 1);
}
