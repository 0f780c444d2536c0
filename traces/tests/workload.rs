//! Tests of the seeded workload: its counts are the recorded summary's, it is a pure function of
//! the seed, its commands encode and decode, they are valid for the modelled mailbox state, it
//! survives the text format, and the proptest strategy draws valid sessions and shrinks them.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufReader;

use imap_codec::decode::Decoder as _;
use imap_codec::encode::Encoder as _;
use imap_codec::CommandCodec;
use imap_types::command::{CommandBody, FetchModifier};
use traces::trace::{self, Aggregation, CommandName, TraceCommand};
use traces::workload::model::mailbox_name;
use traces::workload::{
    recorded_counts, CheckError, Expect, ModelError, ReadErrorKind, SetupStep, StepCommand,
    Workload, WorkloadConfig, WorkloadError,
};

fn recorded(seed: u64) -> Workload {
    Workload::recorded(seed).expect("the default configuration generates")
}

fn names(s: &traces::workload::Session) -> Vec<CommandName> {
    s.commands.iter().map(|c| c.name).collect()
}

#[test]
fn counts_equal_the_summary_raw_rows_4619_commands_244_logins_169_logouts() {
    let raw: BTreeMap<CommandName, usize> = trace::summary()
        .into_iter()
        .filter(|r| r.aggregation == Aggregation::Raw)
        .map(|r| (r.command, r.count as usize))
        .collect();
    assert!(
        !raw.contains_key(&CommandName::Authenticate),
        "the trace has no AUTHENTICATE"
    );
    assert_eq!(recorded_counts(), raw);
    for seed in [0, 1, 42] {
        let w = recorded(seed);
        assert_eq!(w.command_count(), 4_619);
        assert_eq!(w.counts(), raw, "seed {seed}");
        assert_eq!(w.sessions.len(), 244);
        assert_eq!(
            w.sessions.iter().filter(|s| s.ends_with_logout).count(),
            169
        );
        assert_eq!(w.users.len(), 4);
        for s in &w.sessions {
            assert_eq!(s.commands[0].name, CommandName::Login);
            assert_eq!(
                s.commands
                    .iter()
                    .filter(|c| c.name == CommandName::Login)
                    .count(),
                1
            );
            assert_eq!(
                s.ends_with_logout,
                s.commands.last().map(|c| c.name) == Some(CommandName::Logout)
            );
        }
        let users: BTreeSet<usize> = w.sessions.iter().map(|s| s.user).collect();
        assert_eq!(users.len(), 4, "sessions spread over every user");
    }
}

#[test]
fn same_seed_gives_the_same_workload_and_another_seed_differs() {
    let a = recorded(7);
    assert_eq!(a, recorded(7));
    let b = recorded(8);
    assert_ne!(a.sessions, b.sessions);
    assert_ne!(a.setup, b.setup);
}

#[test]
fn setup_fills_every_users_mailboxes_from_the_dataset() {
    let w = recorded(0);
    let config = WorkloadConfig::default();
    let mut per: BTreeMap<(usize, String), usize> = BTreeMap::new();
    let mut indices = BTreeSet::new();
    for s in &w.setup {
        if let SetupStep::Deliver {
            user,
            mailbox,
            email,
            ..
        } = s
        {
            *per.entry((*user, mailbox.clone())).or_default() += 1;
            assert!(indices.insert(email.index), "each dataset email once");
            assert!(config.email_sizes.contains(&email.size));
        }
    }
    for user in 0..4 {
        for (m, &n) in config.mailboxes.iter().zip(&config.emails_per_mailbox) {
            assert_eq!(per[&(user, m.clone())], n, "user {user} {m}");
        }
    }
    let creates = w
        .setup
        .iter()
        .filter(|s| matches!(s, SetupStep::Create { .. }))
        .count();
    assert_eq!(creates, 4 * 4, "Sent, Drafts, Trash, Archive per user");
}

#[test]
fn every_command_encodes_and_decodes_back_equal() {
    let codec = CommandCodec::default();
    let w = recorded(3);
    let mut tags = BTreeSet::new();
    let mut appends = 0;
    for step in w.sessions.iter().flat_map(|s| &s.commands) {
        assert!(
            tags.insert(step.tag().inner().to_owned()),
            "tags are unique"
        );
        match &step.command {
            StepCommand::Trace(TraceCommand::Codec(cmd)) => {
                let wire = codec.encode(cmd).dump();
                let (rest, decoded) = codec
                    .decode(&wire)
                    .unwrap_or_else(|e| panic!("{:?}: {e:?}", String::from_utf8_lossy(&wire)));
                assert!(rest.is_empty());
                assert_eq!(&decoded, cmd, "{}", String::from_utf8_lossy(&wire));
            }
            StepCommand::Trace(TraceCommand::Raw { name, wire }) => {
                assert_eq!(*name, CommandName::List);
                assert!(wire.ends_with(b")\r\n"), "LIST ... RETURN (...)");
            }
            StepCommand::Append(a) => {
                appends += 1;
                let full = a.command().expect("dataset emails generate");
                let wire = step.wire().expect("dataset emails generate");
                assert_eq!(wire, codec.encode(&full).dump(), "prefix + email + CRLF");
                let (rest, decoded) = codec.decode(&wire).expect("APPEND decodes");
                assert!(rest.is_empty());
                assert_eq!(decoded, full);
                assert!(matches!(full.body, CommandBody::Append { .. }));
                assert!(wire.len() as u64 > a.email.size);
            }
        }
    }
    assert_eq!(appends, 6);
}

#[test]
fn replaying_on_the_model_every_seq_and_uid_exists_and_expectations_agree() {
    for seed in 0..6 {
        let w = recorded(seed);
        let model = w.check().unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(model.users.len(), 4);
    }
}

#[test]
fn the_model_refuses_a_uid_that_does_not_exist() {
    let mut w = recorded(0);
    // Find a UID FETCH of a single message and point it past the mailbox's UIDs.
    let (si, ci) = w
        .sessions
        .iter()
        .enumerate()
        .flat_map(|(si, s)| {
            s.commands
                .iter()
                .enumerate()
                .map(move |(ci, c)| (si, ci, c))
        })
        .find_map(|(si, ci, c)| match &c.command {
            StepCommand::Trace(TraceCommand::Codec(cmd)) => match &cmd.body {
                CommandBody::Fetch { uid: true, .. } if c.expect == Expect::Ok => Some((si, ci)),
                _ => None,
            },
            _ => None,
        })
        .expect("the workload has UID FETCHes");
    let StepCommand::Trace(TraceCommand::Codec(cmd)) = &mut w.sessions[si].commands[ci].command
    else {
        unreachable!("found above")
    };
    let CommandBody::Fetch { sequence_set, .. } = &mut cmd.body else {
        unreachable!("found above")
    };
    *sequence_set = "4000000".try_into().expect("a valid set");
    assert_eq!(
        w.check().map(drop),
        Err(CheckError::Step {
            session: si,
            command: ci,
            source: ModelError::NoSuchUid {
                name: CommandName::Fetch,
                uid: 4_000_000
            }
        })
    );
}

#[test]
fn sessions_are_shaped_like_real_clients() {
    let w = recorded(0);
    use CommandName as C;
    // Quick checks: LOGIN, SELECT/EXAMINE, NOOP, LOGOUT.
    let quick = w
        .sessions
        .iter()
        .filter(|s| {
            let n = names(s);
            n.len() == 4
                && matches!(n[1], C::Select | C::Examine)
                && n[2] == C::Noop
                && n[3] == C::Logout
        })
        .count();
    assert!(quick >= 5, "{quick} quick-check sessions");
    // Thunderbird-like: CAPABILITY before LIST before STATUS before the first SELECT, FETCH
    // CHANGEDSINCE right after a SELECT, and IDLE.
    let rich = w.sessions.iter().any(|s| {
        let n = names(s);
        let first = |c: C| n.iter().position(|&x| x == c);
        match (
            first(C::Capability),
            first(C::List),
            first(C::Status),
            first(C::Select),
        ) {
            (Some(a), Some(b), Some(c), Some(d)) => a < b && b < c && c < d && n.contains(&C::Idle),
            _ => false,
        }
    });
    assert!(rich, "a session opens like Thunderbird");
    let mut sync_after_select = 0;
    for s in &w.sessions {
        for pair in s.commands.windows(2) {
            if let StepCommand::Trace(TraceCommand::Codec(c)) = &pair[1].command {
                if let CommandBody::Fetch { modifiers, .. } = &c.body {
                    if pair[0].name == C::Select
                        && modifiers
                            .iter()
                            .any(|m| matches!(m, FetchModifier::ChangedSince(_)))
                    {
                        sync_after_select += 1;
                    }
                }
            }
        }
    }
    assert!(
        sync_after_select > 0,
        "FETCH CHANGEDSINCE right after SELECT"
    );
    // Within a visit, nothing names messages after an IDLE; ENABLE never follows a SELECT.
    for s in &w.sessions {
        let n = names(s);
        let mut idled = false;
        for &c in &n {
            match c {
                C::Select | C::Examine => idled = false,
                C::Idle => idled = true,
                C::Fetch | C::Search | C::Store | C::Move => assert!(!idled, "{n:?}"),
                _ => {}
            }
        }
        if let (Some(e), Some(sel)) = (
            n.iter().position(|&x| x == C::Enable),
            n.iter().position(|&x| matches!(x, C::Select | C::Examine)),
        ) {
            assert!(e < sel, "ENABLE before any SELECT");
        }
    }
}

#[test]
fn no_is_expected_for_missing_mailboxes_and_existing_creates_only() {
    let mut nos = 0;
    for seed in 0..6 {
        let w = recorded(seed);
        let mut mailboxes: Vec<BTreeSet<String>> = vec![BTreeSet::from(["INBOX".to_owned()]); 4];
        for s in &w.setup {
            if let SetupStep::Create { user, mailbox } = s {
                mailboxes[*user].insert(mailbox.clone());
            }
        }
        for s in &w.sessions {
            for c in &s.commands {
                let StepCommand::Trace(TraceCommand::Codec(cmd)) = &c.command else {
                    assert_eq!(c.expect, Expect::Ok);
                    continue;
                };
                let named = match &cmd.body {
                    CommandBody::Select { mailbox, .. }
                    | CommandBody::Examine { mailbox, .. }
                    | CommandBody::Status { mailbox, .. }
                    | CommandBody::Create { mailbox } => Some(mailbox_name(mailbox)),
                    _ => None,
                };
                let known = named.as_ref().map(|m| mailboxes[s.user].contains(m));
                match (&cmd.body, c.expect) {
                    (CommandBody::Create { .. }, e) => {
                        assert_eq!(e == Expect::No, known == Some(true));
                        mailboxes[s.user].insert(named.expect("CREATE names a mailbox"));
                    }
                    (_, Expect::No) => {
                        nos += 1;
                        assert_eq!(known, Some(false), "NO only for a missing mailbox");
                    }
                    (_, e) => {
                        assert_eq!(e, Expect::Ok);
                        assert_ne!(known, Some(false), "OK only for an existing mailbox");
                    }
                }
            }
        }
    }
    assert!(nos > 0, "some commands expect NO");
}

#[test]
fn changedsince_is_a_modseq_the_client_saw() {
    let w = recorded(0);
    let mut values = BTreeSet::new();
    for c in w.sessions.iter().flat_map(|s| &s.commands) {
        if let StepCommand::Trace(TraceCommand::Codec(cmd)) = &c.command {
            if let CommandBody::Fetch { modifiers, .. } = &cmd.body {
                for m in modifiers {
                    if let FetchModifier::ChangedSince(v) = m {
                        values.insert(v.get());
                    }
                }
            }
        }
    }
    // The recorded log holds values like 638435220681800000; generated ones follow the model,
    // which `check` bounds by HIGHESTMODSEQ.
    assert!(values.len() > 5, "{values:?}");
    assert!(values.iter().all(|&v| v < 1_000), "{values:?}");
    w.check().expect("CHANGEDSINCE at most HIGHESTMODSEQ");
}

#[test]
fn write_then_read_gives_the_same_workload() {
    let w = recorded(5);
    let mut text = Vec::new();
    w.write_to(&mut text).expect("writing to memory");
    let step_lines = text
        .split(|&b| b == b'\n')
        .filter(|l| l.starts_with(b"step ") || l.starts_with(b"append "))
        .count();
    assert_eq!(step_lines, 4_619);
    assert!(
        !text.windows(2).any(|p| p == b"\r\n"),
        "one line per step, CRLF escaped"
    );
    let back = Workload::read_from(BufReader::new(&text[..])).expect("reads back");
    assert_eq!(back, w);
    let mut again = Vec::new();
    back.write_to(&mut again).expect("writing to memory");
    assert_eq!(again, text);
}

const CAPTURE: &str = "imapsim-workload 1
# a hand-written capture
user 0 alice secret%20pw
create 0 Sent
deliver 0 INBOX \\Seen 9 0 2000
deliver 0 INBOX - 9 1 3000

step 0 0 ok Login a1 LOGIN alice \"secret pw\"
step 0 0 ok List a2 LIST \"\" \"*\" RETURN (STATUS (UNSEEN))
step 0 0 ok Select a3 SELECT INBOX (CONDSTORE)%0D%0A
step 0 0 ok Fetch a4 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1)
step 0 0 ok Store a5 STORE 2 +FLAGS (\\Deleted)
step 0 0 ok Idle a6 IDLE
append 0 0 ok 9 2 5000 a7 APPEND Sent (\\Seen) {5000}
step 0 0 ok Expunge a8 EXPUNGE
step 0 0 no Select a9 SELECT Nowhere
step 0 0 ok Logout a10 LOGOUT
step 1 0 ok Login b1 LOGIN alice \"secret pw\"
step 1 0 ok Status b2 STATUS Sent (MESSAGES UIDNEXT)
";

#[test]
fn a_hand_written_capture_reads_and_replays_on_the_model() {
    let w = Workload::read_from(CAPTURE.as_bytes()).expect("the capture reads");
    assert_eq!(w.users[0].password, "secret pw");
    assert_eq!(w.setup.len(), 3);
    assert_eq!(w.sessions.len(), 2);
    assert!(w.sessions[0].ends_with_logout);
    assert!(!w.sessions[1].ends_with_logout);
    assert!(matches!(
        w.sessions[0].commands[1].command,
        StepCommand::Trace(TraceCommand::Raw { .. })
    ));
    let model = w.check().expect("the capture is valid for the model");
    let inbox = model.mailbox(0, "INBOX").expect("INBOX exists");
    assert_eq!(inbox.uids(), [1], "message 2 expunged");
    assert_eq!(
        inbox.highest_modseq, 4,
        "2 appends, 1 flag change, 1 expunge"
    );
    assert_eq!(model.mailbox(0, "Sent").expect("Sent exists").uids(), [1]);
    let wire = w.sessions[0].commands[2].wire().expect("no email");
    assert_eq!(wire, b"a3 SELECT INBOX (CONDSTORE)\r\n");
}

#[test]
fn a_bad_line_is_an_error_naming_its_line_and_kind() {
    let bad_name = CAPTURE.replace("ok Idle a6", "ok Idel a6");
    let e = Workload::read_from(bad_name.as_bytes()).expect_err("unknown name");
    assert_eq!(e.line, 13);
    assert_eq!(e.kind, ReadErrorKind::Name("Idel".into()));
    let mismatch = CAPTURE.replace("ok Idle a6", "ok Noop a6");
    let e = Workload::read_from(mismatch.as_bytes()).expect_err("IDLE is no NOOP");
    assert!(
        matches!(
            e.kind,
            ReadErrorKind::Wire {
                name: CommandName::Noop,
                ..
            }
        ),
        "{e}"
    );
    let e = Workload::read_from("imapsim-workload 2\n".as_bytes()).expect_err("version");
    assert_eq!(e.kind, ReadErrorKind::Header);
    let order = CAPTURE.replace("step 1 0 ok Status", "step 3 0 ok Status");
    let e = Workload::read_from(order.as_bytes()).expect_err("session order");
    assert_eq!(e.kind, ReadErrorKind::Session(3));
    let escape = CAPTURE.replace("secret%20pw", "secret%2");
    let e = Workload::read_from(escape.as_bytes()).expect_err("escape");
    assert_eq!(
        (e.line, e.kind),
        (3, ReadErrorKind::Escape("secret%2".into()))
    );
}

#[test]
fn the_model_refuses_a_selected_state_command_without_select() {
    let text = "imapsim-workload 1\nuser 0 a b\nstep 0 0 ok Login t1 LOGIN a b\nstep 0 0 ok Fetch t2 FETCH 1 (FLAGS)\n";
    let w = Workload::read_from(text.as_bytes()).expect("reads");
    assert_eq!(
        w.check().map(drop),
        Err(CheckError::Step {
            session: 0,
            command: 1,
            source: ModelError::NotSelected {
                name: CommandName::Fetch
            }
        })
    );
}

#[test]
fn other_counts_and_users_generate_exactly() {
    use CommandName as C;
    let counts: BTreeMap<CommandName, usize> = [
        (C::Login, 10),
        (C::Logout, 4),
        (C::Capability, 2),
        (C::Select, 12),
        (C::Examine, 2),
        (C::Fetch, 30),
        (C::Search, 8),
        (C::Store, 3),
        (C::Move, 1),
        (C::Expunge, 1),
        (C::Idle, 5),
        (C::Noop, 6),
        (C::Unselect, 9),
        (C::Close, 2),
        (C::Status, 6),
        (C::List, 3),
        (C::Append, 2),
        (C::Create, 3),
    ]
    .into_iter()
    .collect();
    let config = WorkloadConfig {
        seed: 11,
        users: 2,
        emails_per_mailbox: vec![6, 2, 1, 1, 3],
        email_sizes: vec![1_000, 2_500, 9_000],
        counts: counts.clone(),
        ..WorkloadConfig::default()
    };
    let w = Workload::generate(&config).expect("generates");
    assert_eq!(w.counts(), counts);
    assert_eq!(w.sessions.len(), 10);
    assert_eq!(w.sessions.iter().filter(|s| s.ends_with_logout).count(), 4);
    w.check().expect("valid for the model");
}

#[test]
fn impossible_configurations_are_errors_by_kind() {
    let with = |f: &dyn Fn(&mut WorkloadConfig)| {
        let mut c = WorkloadConfig::default();
        f(&mut c);
        Workload::generate(&c).expect_err("refused")
    };
    assert_eq!(
        with(&|c| {
            c.counts.insert(CommandName::Authenticate, 1);
        }),
        WorkloadError::NoVariant(CommandName::Authenticate)
    );
    assert!(matches!(
        with(&|c| {
            c.counts.insert(CommandName::Logout, 300);
        }),
        WorkloadError::Counts(_)
    ));
    assert_eq!(
        with(&|c| {
            c.emails_per_mailbox.pop();
        }),
        WorkloadError::MailboxCounts {
            mailboxes: 5,
            counts: 4
        }
    );
    assert_eq!(
        with(&|c| c.email_sizes = vec![10]),
        WorkloadError::SizeTooSmall { size: 10, min: 200 }
    );
    assert_eq!(
        with(&|c| c.emails_per_mailbox = vec![0; 5]),
        WorkloadError::NoMessages
    );
    assert_eq!(
        with(&|c| c.missing_mailbox_probability = 1.5),
        WorkloadError::Probability(1.5)
    );
}

#[cfg(feature = "proptest")]
mod strategy {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
    use traces::workload::{session_strategy, Session, Workload, WorkloadConfig};
    use traces::CommandName;

    fn replay(session: Session) -> Result<(), String> {
        let mut w = Workload::setup_only(&WorkloadConfig::default()).map_err(|e| e.to_string())?;
        w.sessions.push(session);
        w.check().map(drop).map_err(|e| e.to_string())
    }

    /// Runs `property` on sessions of up to 40 commands drawn from the default configuration.
    fn run_on_sessions(
        config: Config,
        property: impl Fn(Session) -> Result<(), TestCaseError>,
    ) -> Result<(), TestError<Session>> {
        let strategy =
            session_strategy(&WorkloadConfig::default(), 40).expect("the default configuration");
        TestRunner::new(config).run(&strategy, property)
    }

    #[test]
    fn drawn_sessions_are_valid_for_the_model() {
        let config = Config {
            cases: 64,
            ..Config::default()
        };
        let result = run_on_sessions(config, |s| {
            prop_assert_eq!(s.commands[0].name, CommandName::Login);
            prop_assert!(s.commands.len() <= 2 * 40 + 2);
            let r = replay(s);
            prop_assert!(r.is_ok(), "{:?}", r);
            Ok(())
        });
        assert!(result.is_ok(), "{result:?}");
    }

    #[test]
    fn a_failing_property_shrinks_to_a_minimal_session() {
        let config = Config {
            cases: 256,
            failure_persistence: None,
            ..Config::default()
        };
        // "No session stores flags" fails; the minimal counterexample is LOGIN, SELECT, STORE.
        let result = run_on_sessions(config, |s| {
            prop_assert!(!s.commands.iter().any(|c| c.name == CommandName::Store));
            Ok(())
        });
        let Err(TestError::Fail(_, minimal)) = result else {
            panic!("the property fails: {result:?}");
        };
        let names: Vec<CommandName> = minimal.commands.iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            [CommandName::Login, CommandName::Select, CommandName::Store]
        );
        assert!(!minimal.ends_with_logout);
    }
}
