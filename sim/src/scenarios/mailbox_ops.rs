//! The one-user RAM-study scenarios on a preloaded INBOX: `copy_move`, `store_flags`, `refresh`,
//! `search_meta`, `search_body` and `list`. Each runs its commands in measured phases and checks
//! the answers (message counts, no body traffic where none is needed).

use fakes3::Op;
use imap_proto::{MailboxDatum, Response};

use super::common::{expect_eq, fetch_count, Dataset, OneUser, Steps, StepsFuture};
use crate::client::{ClientError, Reply};
use crate::report::MIB;
use crate::scenario::{Report, ScenarioError};

const X1: Dataset = Dataset::Recorded { factor: 1 };
const X10: Dataset = Dataset::Recorded { factor: 10 };
/// Parallel APPEND sessions filling INBOX.
const PRELOAD_SESSIONS: usize = 4;

/// S3 body traffic so far: (GetObject, PutObject, CopyObject).
fn body_ops(s: &Steps) -> (u64, u64, u64) {
    let r = s.fake.stats().requests;
    (r[&Op::GetObject], r[&Op::PutObject], r[&Op::CopyObject])
}

/// The numbers of a SEARCH answer.
fn search_hits(reply: &Reply) -> usize {
    reply
        .parsed()
        .map(|r| match r {
            Response::MailboxData(MailboxDatum::Search(ids)) => ids.len(),
            _ => 0,
        })
        .sum()
}

/// The MESSAGES count of a STATUS answer.
fn status_messages(reply: &Reply) -> Option<u32> {
    reply.parsed().find_map(|r| match r {
        Response::MailboxData(MailboxDatum::Status { status, .. }) => {
            status.iter().find_map(|a| match a {
                imap_proto::StatusAttribute::Messages(n) => Some(*n),
                _ => None,
            })
        }
        _ => None,
    })
}

/// Runs `command` as one phase, checking that it answers OK.
async fn step(s: &mut Steps, command: &str) -> Result<Reply, ClientError> {
    let reply = s.client.command(command).await?;
    s.phases.end_phase().await;
    Ok(reply)
}

fn copy_move_steps(s: &mut Steps) -> StepsFuture<'_> {
    Box::pin(async move {
        let before = body_ops(s);
        step(s, "COPY 1:* Sent").await?;
        let after_copy = body_ops(s);
        step(s, "SELECT Sent").await?;
        let before_move = body_ops(s);
        step(s, "MOVE 1:* Archive").await?;
        let after_move = body_ops(s);
        let sum = |a: (u64, u64, u64), b: (u64, u64, u64)| (b.0 - a.0) + (b.1 - a.1) + (b.2 - a.2);
        s.figures
            .insert("copy_body_requests".into(), sum(before, after_copy));
        s.figures
            .insert("move_body_requests".into(), sum(before_move, after_move));
        expect_eq(
            &mut s.outcome,
            "S3 body requests during COPY",
            sum(before, after_copy),
            0,
        );
        expect_eq(
            &mut s.outcome,
            "S3 body requests during MOVE",
            sum(before_move, after_move),
            0,
        );
        let archive = s.client.command("STATUS Archive (MESSAGES)").await?;
        expect_eq(
            &mut s.outcome,
            "Archive MESSAGES",
            status_messages(&archive),
            Some(s.emails as u32),
        );
        let sent = s.client.command("STATUS INBOX (MESSAGES)").await?;
        expect_eq(
            &mut s.outcome,
            "INBOX MESSAGES after COPY",
            status_messages(&sent),
            Some(s.emails as u32),
        );
        Ok(())
    })
}

/// COPY 1k emails INBOX→Sent, then MOVE them to Archive.
pub fn run_copy_move(seed: u64) -> Result<Report, ScenarioError> {
    OneUser {
        name: "copy_move",
        dataset: X10,
        preload_sessions: PRELOAD_SESSIONS,
        setup: &[],
        phases: &["copy", "select_sent", "move"],
        measured: &["copy", "move"],
        target_bytes: 2 * MIB,
        steps: copy_move_steps,
    }
    .run(seed)
}

fn store_flags_steps(s: &mut Steps) -> StepsFuture<'_> {
    Box::pin(async move {
        let one = step(s, "STORE 1 +FLAGS (\\Flagged)").await?;
        expect_eq(
            &mut s.outcome,
            "STORE 1 FETCH responses",
            fetch_count(&one),
            1,
        );
        let sixteen = step(
            s,
            "STORE 2 +FLAGS (\\Seen \\Answered \\Flagged \\Draft $Forwarded $Junk $NotJunk $MDNSent \
             $Label1 $Label2 $Label3 $Label4 $Label5 work personal todo)",
        )
        .await?;
        expect_eq(
            &mut s.outcome,
            "STORE 16 flags FETCH responses",
            fetch_count(&sixteen),
            1,
        );
        let all = step(s, "STORE 1:* +FLAGS (\\Seen)").await?;
        expect_eq(
            &mut s.outcome,
            "STORE 1:* FETCH responses",
            fetch_count(&all),
            s.emails,
        );
        Ok(())
    })
}

/// 1 flag on 1 email, 16 flags on 1 email, 1 flag on 1k emails.
pub fn run_store_flags(seed: u64) -> Result<Report, ScenarioError> {
    OneUser {
        name: "store_flags",
        dataset: X10,
        preload_sessions: PRELOAD_SESSIONS,
        setup: &[],
        phases: &["store_1_flag", "store_16_flags", "store_1k_emails"],
        measured: &["store_1_flag", "store_16_flags", "store_1k_emails"],
        target_bytes: 2 * MIB,
        steps: store_flags_steps,
    }
    .run(seed)
}

fn refresh_steps(s: &mut Steps) -> StepsFuture<'_> {
    Box::pin(async move {
        let select = step(s, "SELECT INBOX").await?;
        expect_eq(
            &mut s.outcome,
            "SELECT EXISTS",
            super::common::exists(&select),
            Some(s.emails as u32),
        );
        step(s, "NOOP").await?;
        step(s, "CHECK").await?;
        let status = step(s, "STATUS Archive (MESSAGES UIDNEXT UNSEEN)").await?;
        expect_eq(
            &mut s.outcome,
            "STATUS Archive MESSAGES",
            status_messages(&status),
            Some(0),
        );
        Ok(())
    })
}

/// SELECT, NOOP, CHECK, STATUS of another mailbox, on a 1k INBOX.
pub fn run_refresh(seed: u64) -> Result<Report, ScenarioError> {
    OneUser {
        name: "refresh",
        dataset: X10,
        preload_sessions: PRELOAD_SESSIONS,
        setup: &[],
        phases: &["select", "noop", "check", "status"],
        measured: &["select", "noop", "check", "status"],
        target_bytes: MIB,
        steps: refresh_steps,
    }
    .run(seed)
}

/// The trace's SEARCH commands (flags, dates, headers, sequence sets), in IMAP syntax.
pub const TRACE_SEARCHES: &[&str] = &[
    "UID SEARCH HEADER Message-ID \"<Mailbird-8d3b03f5-7737-479e-b8d7-a3cae013e72f@saint-ex.deuxfleurs.org>\" UNDELETED",
    "UID SEARCH 1:* DELETED",
    "UID SEARCH 1:* NOT DELETED",
    "UID SEARCH 1:* SINCE 16-Nov-2023",
    "UID SEARCH 1:* UNSEEN",
    "UID SEARCH 1:1 NOT DELETED",
    "UID SEARCH 1:4 NOT DELETED",
    "SEARCH SINCE 7-Feb-2024 ALL",
    "SEARCH SINCE 8-Feb-2024 ALL",
    "SEARCH SINCE 9-Feb-2024 ALL",
    "SEARCH UNDELETED SINCE 17-Nov-2023",
    "SEARCH UNDELETED SINCE 13-Feb-2024",
    "UID SEARCH BEFORE 9-Feb-2024",
    "UID SEARCH SINCE 31-Jan-2024",
];

fn search_meta_steps(s: &mut Steps) -> StepsFuture<'_> {
    Box::pin(async move {
        let before = body_ops(s);
        let mut hits = 0;
        for command in TRACE_SEARCHES {
            hits += search_hits(&s.client.command(command).await?);
        }
        s.phases.end_phase().await;
        let after = body_ops(s);
        s.figures.insert("search_hits".into(), hits as u64);
        s.figures
            .insert("body_get_objects".into(), after.0 - before.0);
        // Every message is unseen and undeleted: "1:* NOT DELETED" and "1:* UNSEEN" hit all.
        let all = s.client.command("SEARCH 1:* UNSEEN").await?;
        expect_eq(
            &mut s.outcome,
            "SEARCH UNSEEN hits",
            search_hits(&all),
            s.emails,
        );
        Ok(())
    })
}

/// The trace's SEARCH commands on 1k emails.
pub fn run_search_meta(seed: u64) -> Result<Report, ScenarioError> {
    OneUser {
        name: "search_meta",
        dataset: X10,
        preload_sessions: PRELOAD_SESSIONS,
        setup: &[],
        phases: &["search"],
        measured: &["search"],
        target_bytes: 2 * MIB,
        steps: search_meta_steps,
    }
    .run(seed)
}

fn search_body_steps(s: &mut Steps) -> StepsFuture<'_> {
    Box::pin(async move {
        let before = body_ops(s);
        let body = s.client.command("SEARCH BODY \"the\"").await?;
        let text = s.client.command("SEARCH TEXT \"zqxjkvbw\"").await?;
        s.phases.end_phase().await;
        let after = body_ops(s);
        s.figures
            .insert("body_hits".into(), search_hits(&body) as u64);
        s.figures
            .insert("text_hits_absent_word".into(), search_hits(&text) as u64);
        s.figures
            .insert("body_get_objects".into(), after.0 - before.0);
        expect_eq(
            &mut s.outcome,
            "SEARCH TEXT of an absent word",
            search_hits(&text),
            0,
        );
        if search_hits(&body) == 0 {
            s.outcome.mismatches += 1;
            s.outcome
                .notes
                .push("SEARCH BODY \"the\" found nothing".into());
        }
        Ok(())
    })
}

/// SEARCH BODY / TEXT on 1k emails (every body read).
pub fn run_search_body(seed: u64) -> Result<Report, ScenarioError> {
    OneUser {
        name: "search_body",
        dataset: X10,
        preload_sessions: PRELOAD_SESSIONS,
        setup: &[],
        phases: &["search"],
        measured: &["search"],
        target_bytes: 2 * MIB,
        steps: search_body_steps,
    }
    .run(seed)
}

fn list_steps(s: &mut Steps) -> StepsFuture<'_> {
    Box::pin(async move {
        let list = step(s, "LIST \"\" \"*\"").await?;
        let count = |r: &Reply| {
            r.parsed()
                .filter(|r| matches!(r, Response::MailboxData(MailboxDatum::List { .. })))
                .count()
        };
        expect_eq(&mut s.outcome, "LIST mailboxes", count(&list), 5);
        step(s, "LSUB \"\" \"*\"").await?;
        let status = step(s, "LIST \"\" \"*\" RETURN (STATUS (MESSAGES UNSEEN))").await?;
        let statuses = status
            .parsed()
            .filter(|r| matches!(r, Response::MailboxData(MailboxDatum::Status { .. })))
            .count();
        expect_eq(&mut s.outcome, "LIST-STATUS answers", statuses, 5);
        Ok(())
    })
}

/// LIST, LSUB and LIST-STATUS over 5 mailboxes (INBOX with the 100 emails).
pub fn run_list(seed: u64) -> Result<Report, ScenarioError> {
    OneUser {
        name: "list",
        dataset: X1,
        preload_sessions: PRELOAD_SESSIONS,
        setup: &["DELETE Junk"],
        phases: &["list", "lsub", "list_status"],
        measured: &["list", "lsub", "list_status"],
        target_bytes: MIB,
        steps: list_steps,
    }
    .run(seed)
}
