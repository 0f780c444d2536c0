//! Concurrent first logins of one user: several sessions of one server instance log in as a user
//! who has never logged in and then APPEND at once. Every APPEND is answered OK and is in the
//! mailbox afterwards, once, under the UID its APPENDUID gave, and no two share a UID. (On two
//! instances APPENDUIDs can still differ from the final UIDs, first login or not: a row another
//! instance writes with an earlier sort key can land after the answer; not fixed here.)

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use common::{tagged, Client};
use server::config::Limits;

/// Messages each session appends.
const EACH: usize = 4;

/// Logs in as a new user and appends [`EACH`] messages to `mailbox`: (subject, APPENDUID) of each.
async fn log_in_and_append(addr: SocketAddr, session: usize, mailbox: &str) -> Vec<(String, u32)> {
    let mut c = Client::connect(addr).await;
    let login = c.run("a", "LOGIN alice alice-pw").await;
    assert!(
        tagged(&login).starts_with("a OK"),
        "session {session}: {login:?}"
    );
    let mut acked = Vec::new();
    for k in 0..EACH {
        let subject = format!("m-{session}-{k}");
        let m = format!("Subject: {subject}\r\n\r\nbody\r\n");
        let tag = format!("b{k}");
        c.send(format!("{tag} APPEND {mailbox} {{{}+}}\r\n{m}\r\n", m.len()).as_bytes())
            .await;
        let reply = c.until(&tag).await;
        let status = tagged(&reply);
        assert!(
            status.starts_with(&format!("{tag} OK [APPENDUID ")),
            "session {session}: {reply:?}"
        );
        let uid = status
            .split_whitespace()
            .nth(4)
            .and_then(|u| u.trim_end_matches(']').parse().ok())
            .expect("APPENDUID's UID");
        acked.push((subject, uid));
    }
    acked
}

/// Runs `sessions` first logins at once, alternating between the addresses, then checks `mailbox`.
async fn first_logins_then_appends(addrs: &[SocketAddr], sessions: usize, mailbox: &'static str) {
    let mut tasks = Vec::new();
    for s in 0..sessions {
        let addr = addrs[s % addrs.len()];
        tasks.push(tokio::spawn(log_in_and_append(addr, s, mailbox)));
    }
    let mut acked = BTreeMap::new();
    for task in tasks {
        acked.extend(task.await.expect("a session's task does not panic"));
    }
    for addr in addrs {
        let mut c = Client::connect(*addr).await;
        assert!(tagged(&c.run("c", "LOGIN alice alice-pw").await).starts_with("c OK"));
        let select = c.run("d", &format!("SELECT {mailbox}")).await;
        assert!(tagged(&select).starts_with("d OK"), "{select:?}");
        let fetch = c
            .run("e", "FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            .await;
        let mut listed = BTreeMap::new();
        let mut uid = None;
        for line in &fetch {
            if let Some(rest) = line.split_once("(UID ").map(|(_, r)| r) {
                uid = rest.split(' ').next().and_then(|u| u.parse::<u32>().ok());
            } else if let (Some(subject), Some(uid)) = (line.strip_prefix("Subject: "), uid.take())
            {
                assert!(
                    listed.insert(subject.trim_end().to_string(), uid).is_none(),
                    "{subject} listed twice: {fetch:?}"
                );
            }
        }
        assert_eq!(
            listed, acked,
            "every acknowledged APPEND, under its APPENDUID"
        );
        let uids: std::collections::BTreeSet<&u32> = listed.values().collect();
        assert_eq!(uids.len(), listed.len(), "UIDs are unique");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_logins_on_one_instance_keep_every_append() {
    let started = common::start(Limits::default()).await;
    first_logins_then_appends(&[started.imap], 8, "INBOX").await;
}
