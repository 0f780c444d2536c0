//! Several sessions on one mailbox doing APPEND, STORE, EXPUNGE, FETCH, SEARCH and NOOP at once,
//! each keeping the model a careful client keeps (sequence number to UID), and checking every
//! untagged response against it: EXISTS never below the client's count, EXPUNGE and FETCH only of
//! numbers the client has, no EXPUNGE during FETCH, STORE or SEARCH by sequence number (RFC 3501
//! 7.4.1), UIDs that agree with what the client was told. At the end every view is the same.

mod common;

use std::net::SocketAddr;

use common::{tagged, Client};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use server::config::Limits;

/// What a client knows of the selected mailbox: the UID of each sequence number, once told.
#[derive(Default)]
struct Model {
    uids: Vec<Option<u32>>,
}

impl Model {
    /// Checks the untagged responses of one command and folds them in; `seq_command` is a FETCH,
    /// STORE or SEARCH by sequence number.
    fn check(&mut self, who: &str, command: &str, lines: &[String], seq_command: bool) {
        let context = || format!("{who} `{command}`: {lines:?}");
        for line in lines.iter().filter(|l| l.starts_with("* ")) {
            let mut words = line[2..].split_whitespace();
            let (first, second) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            if first == "SEARCH" {
                if !command.starts_with("UID") {
                    for n in line[8..].split_whitespace() {
                        let n: usize = n.parse().expect("numeric SEARCH result");
                        assert!(n >= 1 && n <= self.uids.len(), "SEARCH {n}: {}", context());
                    }
                }
                continue;
            }
            let Ok(n) = first.parse::<usize>() else {
                continue; // FLAGS, OK [...]
            };
            match second {
                "EXISTS" => {
                    assert!(n >= self.uids.len(), "EXISTS went down: {}", context());
                    self.uids.resize(n, None);
                }
                "EXPUNGE" => {
                    assert!(!seq_command, "EXPUNGE during {command}: {}", context());
                    assert!(n >= 1 && n <= self.uids.len(), "unknown {n}: {}", context());
                    self.uids.remove(n - 1);
                }
                "FETCH" => {
                    assert!(n >= 1 && n <= self.uids.len(), "unknown {n}: {}", context());
                    if let Some(uid) = line
                        .split_once("UID ")
                        .and_then(|(_, rest)| rest.split([' ', ')']).next())
                        .and_then(|u| u.parse::<u32>().ok())
                    {
                        let known = &mut self.uids[n - 1];
                        assert!(known.is_none_or(|k| k == uid), "UID changed: {}", context());
                        *known = Some(uid);
                    }
                }
                _ => {}
            }
        }
        let known: Vec<u32> = self.uids.iter().flatten().copied().collect();
        assert!(
            known.windows(2).all(|w| w[0] < w[1]),
            "UIDs out of order {known:?}: {}",
            context()
        );
        let status = tagged(lines);
        assert!(
            status.contains(" OK ") || status.contains(" NO "),
            "{}",
            context()
        );
    }
}

async fn login_and_select(addr: SocketAddr, model: &mut Model) -> Client {
    let mut c = Client::connect(addr).await;
    assert!(tagged(&c.run("l", "LOGIN alice alice-pw").await).starts_with("l OK"));
    let lines = c.run("s", "SELECT INBOX").await;
    model.check("select", "SELECT INBOX", &lines, false);
    c
}

async fn run(c: &mut Client, model: &mut Model, who: &str, command: &str, seq_command: bool) {
    let lines = c.run("t", command).await;
    model.check(who, command, &lines, seq_command);
}

/// One client's random commands; the client and its model after them.
async fn client(addr: SocketAddr, id: u64, commands: usize) -> (Client, Model, String) {
    let mut rng = ChaCha8Rng::seed_from_u64(id);
    let mut model = Model::default();
    let mut c = login_and_select(addr, &mut model).await;
    let who = format!("client {id}");
    for i in 0..commands {
        let len = model.uids.len() as u32;
        let seq = if len > 0 { 1 + rng.next_u32() % len } else { 0 };
        match rng.next_u32() % 9 {
            0 | 1 => {
                let message = format!("Subject: {id}.{i}\r\n\r\nbody\r\n");
                let command = format!("APPEND INBOX {{{}+}}\r\n{message}", message.len());
                run(&mut c, &mut model, &who, &command, false).await;
            }
            2 if seq > 0 => {
                let command = format!("STORE {seq} +FLAGS (\\Deleted)");
                run(&mut c, &mut model, &who, &command, true).await;
            }
            3 if seq > 0 => {
                let command = format!("STORE {seq} FLAGS (\\Seen)");
                run(&mut c, &mut model, &who, &command, true).await;
            }
            4 => run(&mut c, &mut model, &who, "EXPUNGE", false).await,
            5 if seq > 0 => run(&mut c, &mut model, &who, "FETCH 1:* (UID FLAGS)", true).await,
            6 => run(&mut c, &mut model, &who, "SEARCH ALL", true).await,
            7 => run(&mut c, &mut model, &who, "UID FETCH 1:* (FLAGS)", false).await,
            _ => run(&mut c, &mut model, &who, "NOOP", false).await,
        }
    }
    (c, model, who)
}

#[tokio::test]
async fn concurrent_sessions_keep_views_clients_can_follow() {
    let addr = common::start(Limits::default()).await.imap;
    for seed in 0..3u64 {
        let tasks: Vec<_> = (0..4)
            .map(|i| tokio::spawn(client(addr, seed * 10 + i, 40)))
            .collect();
        let mut clients = Vec::new();
        for task in tasks {
            clients.push(task.await.expect("client task"));
        }
        // Settled: after one more NOOP each session's view is the mailbox, UID for UID.
        let mut fresh = Model::default();
        let mut c = login_and_select(addr, &mut fresh).await;
        let lines = c.run("u", "UID SEARCH ALL").await;
        let all: Vec<u32> = lines
            .iter()
            .filter_map(|l| l.strip_prefix("* SEARCH"))
            .flat_map(|r| r.split_whitespace().filter_map(|n| n.parse().ok()))
            .collect();
        assert_eq!(all.len(), fresh.uids.len(), "{lines:?}");
        for (mut c, mut model, who) in clients {
            run(&mut c, &mut model, &who, "NOOP", false).await;
            if !model.uids.is_empty() {
                run(&mut c, &mut model, &who, "FETCH 1:* (UID)", true).await;
            }
            let view: Vec<u32> = model.uids.iter().map(|u| u.expect("fetched")).collect();
            assert_eq!(view, all, "{who}'s view");
        }
    }
}
