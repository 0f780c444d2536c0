//! Every one of the 240 distinct commands of the recorded trace, sent to the server in a state where
//! it makes sense (logged in, the trace's mailboxes present, INBOX selected for selected-state
//! commands), gets the status a mature server gives: OK, or the NO/BAD listed here with its reason.

mod common;

use std::net::SocketAddr;

use imap_codec::encode::{Encoder, Fragment};
use imap_codec::CommandCodec;
use server::config::Limits;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use traces::trace::{CommandName, TraceCommand};

async fn start() -> SocketAddr {
    common::start_with(Limits::default(), None, &[("alice", "alice-password")])
        .await
        .imap
}

struct Client {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
    n: u32,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        let (r, w) = TcpStream::connect(addr)
            .await
            .expect("connect")
            .into_split();
        let mut c = Client {
            reader: BufReader::new(r),
            writer: w,
            n: 0,
        };
        let mut greeting = String::new();
        c.reader.read_line(&mut greeting).await.expect("greeting");
        c
    }

    /// Reads responses up to the tagged one (skipping literals); returns it.
    async fn until(&mut self, tag: &str) -> String {
        loop {
            let mut line = Vec::new();
            self.reader
                .read_until(b'\n', &mut line)
                .await
                .expect("read");
            assert!(!line.is_empty(), "connection closed before {tag} completed");
            let text = String::from_utf8_lossy(&line).into_owned();
            if let Some(n) = text
                .trim_end()
                .strip_suffix('}')
                .and_then(|l| l.rsplit_once('{'))
                .and_then(|(_, n)| n.parse::<usize>().ok())
            {
                let mut skip = vec![0u8; n];
                self.reader.read_exact(&mut skip).await.expect("literal");
                continue;
            }
            if text.starts_with(&format!("{tag} ")) {
                return text;
            }
            if text.starts_with('+') && tag.ends_with("idle") {
                self.writer.write_all(b"DONE\r\n").await.expect("write");
            }
        }
    }

    async fn run(&mut self, command: &str) -> String {
        self.n += 1;
        let tag = format!("s{}", self.n);
        self.writer
            .write_all(format!("{tag} {command}\r\n").as_bytes())
            .await
            .expect("write");
        self.until(&tag).await
    }
}

/// The command's bytes with our tag, literals sent LITERAL+ style.
fn wire(command: &TraceCommand, tag: &str) -> Vec<u8> {
    match command {
        TraceCommand::Codec(c) => {
            let mut c = c.clone();
            c.tag = imap_types::core::Tag::try_from(tag.to_string()).expect("valid tag");
            let mut out: Vec<u8> = Vec::new();
            for fragment in CommandCodec::default().encode(&c) {
                match fragment {
                    Fragment::Line { data } => out.extend_from_slice(&data),
                    Fragment::Literal { data, .. } => {
                        if out.ends_with(b"}\r\n") && !out.ends_with(b"+}\r\n") {
                            out.truncate(out.len() - 3);
                            out.extend_from_slice(b"+}\r\n");
                        }
                        out.extend_from_slice(&data);
                    }
                }
            }
            out
        }
        TraceCommand::Raw { wire, .. } => {
            let text = String::from_utf8_lossy(wire).into_owned();
            let rest = text
                .split_once(' ')
                .map(|(_, r)| r.to_string())
                .unwrap_or_default();
            format!("{tag} {rest}").into_bytes()
        }
    }
}

/// Commands whose recorded form a mature server does not answer OK here, with the reason.
fn expected_status(name: CommandName) -> &'static str {
    match name {
        // The recorded CREATEs name mailboxes the setup made already (the trace's clients created
        // them before SELECTing them): a second CREATE is NO [ALREADYEXISTS], as Dovecot answers.
        CommandName::Create => "NO",
        _ => "OK",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_recorded_command_gets_the_status_a_mature_server_gives() {
    let addr = start().await;
    let lines = traces::trace::recorded();
    assert_eq!(lines.len(), 240);
    let mut c = Client::connect(addr).await;
    assert!(c.run("LOGIN alice alice-password").await.contains("OK"));
    // The mailboxes the trace's commands name, each with a few messages.
    for name in [
        "Mailspring",
        "Dataset",
        "Mailspring.Snoozed",
        "Test",
        "Test.Coucou",
        "INBOX.Pourriel",
    ] {
        assert!(
            c.run(&format!("CREATE \"{name}\"")).await.contains("OK"),
            "create {name}"
        );
    }
    for mailbox in ["INBOX", "Sent", "Drafts", "Archive", "Trash", "Dataset"] {
        for i in 0..4 {
            let m = format!("From: a{i}@example.org\r\nSubject: s{i}\r\nDate: Tue, 13 Feb 2024 10:00:00 +0100\r\n\r\nbody {i}\r\n");
            let reply = c
                .run(&format!("APPEND \"{mailbox}\" {{{}+}}\r\n{m}", m.len()))
                .await;
            assert!(reply.contains("OK"), "{reply}");
        }
    }
    let mut wrong = Vec::new();
    let mut ok = 0;
    for line in &lines {
        let selected_state = matches!(
            line.name,
            CommandName::Check
                | CommandName::Close
                | CommandName::Expunge
                | CommandName::Fetch
                | CommandName::Idle
                | CommandName::Move
                | CommandName::Search
                | CommandName::Store
                | CommandName::Unselect
        );
        if line.name == CommandName::Login {
            c = Client::connect(addr).await; // a fresh, unauthenticated connection
        } else if selected_state {
            assert!(c.run("SELECT INBOX").await.contains("OK"));
        }
        c.n += 1;
        let tag = if line.name == CommandName::Idle {
            format!("t{}idle", c.n)
        } else {
            format!("t{}", c.n)
        };
        c.writer
            .write_all(&wire(&line.command, &tag))
            .await
            .expect("write");
        let reply = c.until(&tag).await;
        let status = reply.split_whitespace().nth(1).unwrap_or("").to_string();
        if status == expected_status(line.name) {
            ok += 1;
        } else {
            wrong.push(format!(
                "line {} {:?}: expected {}, got {}",
                line.line,
                line.name,
                expected_status(line.name),
                reply.trim_end()
            ));
        }
        if line.name == CommandName::Logout {
            c = Client::connect(addr).await;
            assert!(c.run("LOGIN alice alice-password").await.contains("OK"));
        }
    }
    println!(
        "{ok} of {} recorded commands got the expected status",
        lines.len()
    );
    assert!(
        wrong.is_empty(),
        "{} unexpected:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
