//! Tests of the trace parser and the summary: every recorded line becomes a command that imap-codec
//! encodes and decodes back, and the counts agree with the recorded summary.

use std::collections::{BTreeMap, BTreeSet};

use imap_codec::decode::Decoder as _;
use imap_codec::CommandCodec;
use imap_types::command::CommandBody;
use imap_types::core::Tag;
use imap_types::extensions::binary::LiteralOrLiteral8;
use traces::trace::{self, Aggregation, CommandName, ParseErrorKind, TraceCommand, RECORDED_LOG};
use traces::{Redacted, SeededRedacted};

#[test]
fn all_240_recorded_lines_parse() {
    let lines = trace::recorded();
    assert_eq!(lines.len(), 240);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l.line, i + 1);
    }
    let raw: Vec<_> = lines
        .iter()
        .filter(|l| matches!(l.command, TraceCommand::Raw { .. }))
        .collect();
    assert_eq!(raw.len(), 1, "one LIST ... RETURN line");
    assert_eq!(raw[0].name, CommandName::List);
}

#[test]
fn distinct_lines_per_command_match_the_summary_unique_rows() {
    let mut distinct: BTreeMap<CommandName, BTreeSet<&str>> = BTreeMap::new();
    for (l, text) in trace::recorded().iter().zip(RECORDED_LOG.lines()) {
        distinct.entry(l.name).or_default().insert(text);
    }
    let unique: BTreeMap<CommandName, u64> = trace::summary()
        .into_iter()
        .filter(|r| r.aggregation == Aggregation::Unique)
        .map(|r| (r.command, r.count))
        .collect();
    assert_eq!(
        distinct.keys().collect::<Vec<_>>(),
        unique.keys().collect::<Vec<_>>(),
        "the same commands"
    );
    // The log holds 240 of the 248 variants: redaction merged the variants that differed only in
    // the user name / password (LOGIN: 9 -> 3) or in the message (APPEND: 6 -> 4).
    let mut missing = 0;
    for (name, lines) in &distinct {
        let n = lines.len() as u64;
        match name {
            CommandName::Login => assert_eq!((n, unique[name]), (3, 9)),
            CommandName::Append => assert_eq!((n, unique[name]), (4, 6)),
            _ => assert_eq!(n, unique[name], "{name}"),
        }
        missing += unique[name] - n;
    }
    assert_eq!(missing, 248 - 240);
    assert_eq!(
        distinct.values().map(BTreeSet::len).sum::<usize>(),
        240,
        "no line repeats"
    );
}

#[test]
fn every_codec_command_encodes_and_decodes_back_equal() {
    let codec = CommandCodec::default();
    let mut checked = 0;
    for l in trace::recorded() {
        let TraceCommand::Codec(cmd) = &l.command else {
            continue;
        };
        let wire = l.command.wire();
        assert!(wire.ends_with(b"\r\n"), "line {}", l.line);
        let (rest, decoded) = codec.decode(&wire).unwrap_or_else(|e| {
            panic!(
                "line {}: {:?} does not decode: {e:?}",
                l.line,
                String::from_utf8_lossy(&wire)
            )
        });
        assert!(rest.is_empty(), "line {}: trailing bytes", l.line);
        assert_eq!(
            &decoded,
            cmd,
            "line {}: {}",
            l.line,
            String::from_utf8_lossy(&wire)
        );
        assert_eq!(cmd.tag.inner(), format!("A{}", l.line));
        checked += 1;
    }
    assert_eq!(checked, 239);
}

#[test]
fn list_with_return_options_is_raw_rfc5819_wire() {
    let lines = trace::recorded();
    for l in &lines {
        if let TraceCommand::Raw { name, wire } = &l.command {
            assert_eq!(*name, CommandName::List);
            let text = String::from_utf8(wire.clone()).expect("ASCII");
            assert!(
                text.starts_with(&format!("A{} ", l.line)),
                "starts with its tag: {text}"
            );
            assert!(text.ends_with("\r\n"));
            assert_eq!(
                text,
                format!("A{} LIST \"\" \"*\" RETURN (STATUS (UNSEEN))\r\n", l.line)
            );
            let retagged = l.command.wire_with_tag(&Tag::try_from("x1").expect("tag"));
            assert_eq!(retagged, b"x1 LIST \"\" \"*\" RETURN (STATUS (UNSEEN))\r\n");
        }
    }
}

#[test]
fn trace_forms_map_to_the_expected_wire() {
    let wires: Vec<String> = trace::recorded()
        .iter()
        .map(|l| String::from_utf8_lossy(&l.command.wire()).into_owned())
        .collect();
    let has = |s: &str| wires.iter().any(|w| w.contains(s));
    assert!(has("SELECT INBOX (CONDSTORE)\r\n"));
    assert!(has("(CHANGEDSINCE 638435249520030000)"));
    assert!(has("HIGHESTMODSEQ)"));
    assert!(has("ENABLE UTF8=ACCEPT\r\n"));
    assert!(has("UID SEARCH 1:* NOT DELETED\r\n"));
    assert!(has("A171 SEARCH SINCE \"07-Feb-2024\" ALL\r\n"));
    assert!(
        has("FETCH 5:* (UID ENVELOPE"),
        "ranges are written low first"
    );
    assert!(has("BODY.PEEK[2]<0.10240>"));
    assert!(has("UID MOVE 20:21 \"Dataset\"\r\n"));
    assert!(has("UID STORE 29 +FLAGS (NonJunk)\r\n"));
    assert!(has("IDLE\r\n"));
    assert!(has(
        "APPEND \"Sent\" (\\Seen) \"14-Feb-2024 14:12:35 +0100\" {"
    ));
}

struct Fixed;

impl Redacted for Fixed {
    fn username(&self, line: usize, recorded: &str) -> String {
        recorded.replace("REDACTED", &format!("user{line}"))
    }
    fn password(&self, _line: usize) -> String {
        "pass word".into()
    }
    fn message(&self, line: usize) -> Vec<u8> {
        format!("From: a@b.c\r\nSubject: {line}\r\n\r\nhello\r\n").into_bytes()
    }
}

#[test]
fn redacted_values_come_from_the_caller() {
    let lines = trace::parse_log(RECORDED_LOG, &Fixed).expect("parses");
    let mut logins = 0;
    let mut appends = 0;
    for l in &lines {
        let TraceCommand::Codec(cmd) = &l.command else {
            continue;
        };
        match &cmd.body {
            CommandBody::Login { username, password } => {
                let u = String::from_utf8_lossy(username.as_ref()).into_owned();
                assert!(u.starts_with(&format!("user{}", l.line)), "{u}");
                assert_eq!(password.declassify().as_ref(), b"pass word");
                logins += 1;
            }
            CommandBody::Append {
                message: LiteralOrLiteral8::Literal(lit),
                ..
            } => {
                assert_eq!(lit.data(), Fixed.message(l.line).as_slice());
                appends += 1;
            }
            _ => {}
        }
    }
    assert_eq!((logins, appends), (3, 4));
    let with_domain = lines
        .iter()
        .map(|l| String::from_utf8_lossy(&l.command.wire()).into_owned());
    assert!(with_domain
        .into_iter()
        .any(|w| w.contains("user") && w.contains("@saint-ex.deuxfleurs.org")));
}

#[test]
fn seeded_redacted_appends_generated_emails() {
    let r = SeededRedacted::default();
    let m = r.message(3);
    assert!((1_000..=20_000).contains(&m.len()));
    assert_eq!(m, r.message(3));
    assert!(mailparse::parse_mail(&m).is_ok());
}

#[test]
fn a_line_that_does_not_parse_is_an_error_naming_its_line() {
    let text = "Noop \nFetch { sequence_set: SequenceSet([Single(Value(1))]+), modifiers: [], uid: true } }\nCheck ";
    let err = trace::parse_log(text, &SeededRedacted::default()).expect_err("missing field");
    assert_eq!(err.line, 2);
    assert!(
        matches!(err.kind, ParseErrorKind::Unexpected { .. }),
        "{err}"
    );
    let err = trace::parse_log(
        "Noop \nNoop \nSelect { mailbox: [ }",
        &SeededRedacted::default(),
    )
    .expect_err("syntax");
    assert_eq!(err.line, 3);
    assert!(matches!(err.kind, ParseErrorKind::Syntax { .. }));
    let err = trace::parse_log("Frobnicate ", &SeededRedacted::default()).expect_err("unknown");
    assert_eq!(err.line, 1);
    assert!(err.to_string().starts_with("line 1: "));
}

#[test]
fn summary_raw_rows_sum_to_4619_and_unique_rows_to_248() {
    let rows = trace::summary();
    assert_eq!(rows.len(), 44);
    let sum = |a| {
        rows.iter()
            .filter(|r| r.aggregation == a)
            .map(|r| r.count)
            .sum::<u64>()
    };
    assert_eq!(sum(Aggregation::Raw), 4_619);
    assert_eq!(sum(Aggregation::Unique), 248);
    let fetch = rows
        .iter()
        .find(|r| r.command == CommandName::Fetch && r.aggregation == Aggregation::Raw);
    assert_eq!(fetch.map(|r| r.count), Some(1_187));
    assert!(trace::parse_summary("count,command,aggregation\n3,Frob,Raw").is_err());
}
