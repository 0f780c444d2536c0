//! Differential test against a live Dovecot 2.3: the same emails (the corpus and a few hundred
//! seeded, generated MIME trees) APPENDed to a private Dovecot and to our server, then FETCH and
//! SEARCH answers compared item by item.
//!
//! Dovecot is the reference. Every difference is either a named exception below (deliberate, or a
//! known gap of our server to be fixed) or the test fails. Comparison is token by token: whitespace
//! is ignored and a string compares by its content whether quoted or literal.
//!
//! Needs `dovecot` (Debian's `dovecot-imapd`); without it the test prints SKIPPED, unless the
//! environment variable `CI` is set, where it fails (CI installs it, see `.ci/run`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;

use answers::Items;
use answers::{fetch_items, item_key, parses, part_paths, search_hits, search_keys};
use bench::dovecot::Dovecot;
use emails::{corpus, generated, Email, GENERATED, SEED};
use imap_client::{Conn, Reply};
use judge::{
    judge_fetch, judge_search, traits, Difference, Kind, Tally, Traits, Verdict, EXCEPTIONS,
};
use ours::{start_ours, OUR_PASSWORD, OUR_USER};
use value::show;

mod answers;
mod emails;
mod gen;
#[path = "../imap_client/mod.rs"]
mod imap_client;
mod judge;
mod ours;
mod value;

/// The private Dovecot's one user.
const DOVECOT_LOGIN: &str = "tester";
const DOVECOT_PASSWORD: &str = "tester-pw";

/// Which server's sequence number of an email.
type SeqOf = fn(&(Option<u32>, Option<u32>)) -> Option<u32>;

/// Both sessions, logged in.
struct Peers {
    ours: Conn,
    theirs: Conn,
}

impl Peers {
    /// Both sessions, logged in: ours at `ours`, Dovecot's in `dovecot`.
    async fn login(ours: SocketAddr, dovecot: &Dovecot) -> Peers {
        let mut peers = Peers {
            ours: Conn::connect("ours", ours).await,
            theirs: Conn::connect("dovecot", dovecot.imap).await,
        };
        let login = format!("LOGIN {OUR_USER} {OUR_PASSWORD}");
        let login = peers.ours.run(login.as_bytes()).await;
        assert!(login.ok(), "our login: {}", login.tagged);
        let login = format!("LOGIN {DOVECOT_LOGIN} {DOVECOT_PASSWORD}");
        let login = peers.theirs.run(login.as_bytes()).await;
        assert!(
            login.ok(),
            "dovecot login: {} (log: {})",
            login.tagged,
            dovecot.log().display()
        );
        peers
    }

    async fn both(&mut self, command: &[u8]) -> (Reply, Reply) {
        (self.ours.run(command).await, self.theirs.run(command).await)
    }

    /// FETCH `items` of message `sa` on ours and `sb` on Dovecot.
    async fn fetch(&mut self, (sa, sb): (u32, u32), items: &str) -> (Reply, Reply) {
        let (ca, cb) = (
            format!("FETCH {sa} ({items})"),
            format!("FETCH {sb} ({items})"),
        );
        (
            self.ours.run(ca.as_bytes()).await,
            self.theirs.run(cb.as_bytes()).await,
        )
    }
}

/// A private Dovecot, or `None` (the test skipped) when it is not installed outside CI.
fn start_dovecot() -> Option<Dovecot> {
    let options = bench::dovecot::DovecotOptions {
        name: "differential".into(),
        users: vec![(DOVECOT_LOGIN.into(), DOVECOT_PASSWORD.into())],
        ..Default::default()
    };
    match Dovecot::start(&options) {
        Ok(d) => Some(d),
        Err(bench::dovecot::DovecotError::NotInstalled) if std::env::var_os("CI").is_none() => {
            eprintln!("\n***********************************************************************");
            eprintln!("*** SKIPPED dovecot_differential: dovecot is not installed.           ***");
            eprintln!("*** apt-get install dovecot-imapd to run it (CI requires it).          ***");
            eprintln!("***********************************************************************\n");
            None
        }
        Err(e) => panic!("cannot start dovecot: {e}"),
    }
}

/// The corpus and the generated emails, dumped as DIR/NAME.eml when `DIFFERENTIAL_DUMP=DIR` (for
/// reproducing a difference by hand).
fn emails() -> Vec<Email> {
    let mut emails = corpus();
    let corpus_count = emails.len();
    emails.extend(generated());
    if let Some(dir) = std::env::var_os("DIFFERENTIAL_DUMP") {
        for e in &emails {
            let path = Path::new(&dir).join(format!("{}.eml", e.name));
            std::fs::create_dir_all(path.parent().expect("a file in a folder"))
                .expect("create dump folder");
            std::fs::write(&path, &e.bytes).expect("write dumped email");
        }
    }
    println!(
        "SEED={} emails: {corpus_count} from the corpus, {GENERATED} generated",
        String::from_utf8_lossy(SEED)
    );
    emails
}

/// APPENDs every email to both; returns each email's sequence number on each server, when its
/// APPEND succeeded.
async fn append_all(
    peers: &mut Peers,
    emails: &[Email],
    tally: &mut Tally,
) -> Vec<(Option<u32>, Option<u32>)> {
    let mut seqs = Vec::new();
    let (mut next_ours, mut next_theirs) = (1u32, 1u32);
    for email in emails {
        let mut command = format!("APPEND INBOX {{{}+}}\r\n", email.bytes.len()).into_bytes();
        command.extend_from_slice(&email.bytes);
        let (a, b) = peers.both(&command).await;
        let seq_a = a.ok().then(|| {
            next_ours += 1;
            next_ours - 1
        });
        let seq_b = b.ok().then(|| {
            next_theirs += 1;
            next_theirs - 1
        });
        if a.ok() == b.ok() {
            tally.equal += 1;
        } else {
            tally
                .wrong
                .push(Difference::tagged(&email.name, "APPEND", &a, &b));
        }
        seqs.push((seq_a, seq_b));
    }
    seqs
}

/// Counts whether imap-proto, an independent parser, reads ours wherever it reads Dovecot's.
fn record_parses(tally: &mut Tally, email: &Email, a: &Reply, b: &Reply) {
    let (pa, pb) = (parses(a), parses(b));
    let verdict = if pa || !pb {
        Verdict::Equal
    } else {
        Verdict::Wrong
    };
    tally.record(verdict, || Difference {
        email: email.name.clone(),
        item: "imap-proto parses the FETCH".into(),
        ours: pa.to_string(),
        theirs: pb.to_string(),
    });
}

/// Judges and counts FETCH item `key` of both answers.
fn record_item(tally: &mut Tally, email: &Email, key: &str, ia: &Items, ib: &Items, t: &Traits) {
    let (va, vb) = (ia.get(key), ib.get(key));
    tally.record(judge_fetch(key, va, vb, t), || Difference {
        email: email.name.clone(),
        item: key.to_string(),
        ours: show(va),
        theirs: show(vb),
    });
}

/// FETCHes the whole-message items and then every part's sections of `email` from both, and
/// compares them.
async fn compare_fetches(peers: &mut Peers, email: &Email, seqs: (u32, u32), tally: &mut Tally) {
    let t = traits(email);
    // BODY is asked alone: imap-proto 0.17 cannot parse it, and every other answer is also
    // checked to be readable by that independent parser.
    let items = "BODYSTRUCTURE ENVELOPE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)] \
                 BODY.PEEK[HEADER] BODY.PEEK[TEXT] BODY.PEEK[]";
    let (a, b) = peers.fetch(seqs, items).await;
    let (mut ia, mut ib) = (fetch_items(&a, seqs.0), fetch_items(&b, seqs.1));
    let (body_a, body_b) = peers.fetch(seqs, "BODY").await;
    ia.extend(fetch_items(&body_a, seqs.0));
    ib.extend(fetch_items(&body_b, seqs.1));
    record_parses(tally, email, &a, &b);
    let mut names: Vec<String> = ib.keys().cloned().collect();
    names.extend(ia.keys().filter(|k| !ib.contains_key(*k)).cloned());
    for name in &names {
        record_item(tally, email, name, &ia, &ib, &t);
    }
    if names.is_empty() {
        tally
            .wrong
            .push(Difference::tagged(&email.name, "FETCH", &body_a, &body_b));
    }
    // Sections of each part, as Dovecot's structure numbers them.
    let Some(bs) = ib.get("BODYSTRUCTURE") else {
        return;
    };
    let mut part_items = Vec::new();
    for (k, (path, message)) in part_paths(bs).into_iter().enumerate() {
        let origin = (k * 37 + email.bytes.len()) % 200;
        let count = 1 + (k * 53 + email.bytes.len()) % 400;
        part_items.push(format!("BODY.PEEK[{path}.MIME]"));
        part_items.push(format!("BODY.PEEK[{path}]"));
        part_items.push(format!("BODY.PEEK[{path}]<{origin}.{count}>"));
        if message {
            part_items.push(format!("BODY.PEEK[{path}.HEADER]"));
            part_items.push(format!("BODY.PEEK[{path}.TEXT]"));
        }
    }
    for batch in part_items.chunks(48) {
        let (a, b) = peers.fetch(seqs, &batch.join(" ")).await;
        let (ia, ib) = (fetch_items(&a, seqs.0), fetch_items(&b, seqs.1));
        record_parses(tally, email, &a, &b);
        for name in batch {
            // Dovecot answers a partial fetch as `BODY[1]<7>`.
            let key = match name.split_once("]<") {
                Some((head, tail)) => {
                    format!("{head}]<{}>", tail.split('.').next().expect("origin"))
                }
                None => name.clone(),
            };
            record_item(tally, email, &item_key(&key), &ia, &ib, &t);
        }
    }
}

/// Runs the same SEARCH keys on both and compares each email's membership.
async fn compare_searches(
    peers: &mut Peers,
    emails: &[Email],
    seqs: &[(Option<u32>, Option<u32>)],
    tally: &mut Tally,
) {
    let seq_to_email = |f: SeqOf| -> BTreeMap<u32, usize> {
        seqs.iter()
            .enumerate()
            .filter_map(|(i, s)| f(s).map(|n| (n, i)))
            .collect()
    };
    let (map_a, map_b) = (seq_to_email(|s| s.0), seq_to_email(|s| s.1));
    let hits = |reply: &Reply, map: &BTreeMap<u32, usize>| -> BTreeSet<usize> {
        search_hits(reply)
            .iter()
            .filter_map(|n| map.get(n).copied())
            .collect()
    };
    for key in search_keys() {
        let mut command = b"SEARCH ".to_vec();
        command.extend_from_slice(&key.command);
        let (a, b) = peers.both(&command).await;
        let shown = String::from_utf8_lossy(&key.command).replace("\r\n", " ");
        let item = format!("SEARCH {shown}");
        if a.ok() != b.ok() {
            tally.wrong.push(Difference::tagged("(all)", &item, &a, &b));
            continue;
        }
        let (hits_a, hits_b) = (hits(&a, &map_a), hits(&b, &map_b));
        for (i, email) in emails.iter().enumerate() {
            if seqs[i].0.is_none() || seqs[i].1.is_none() {
                continue;
            }
            let (in_a, in_b) = (hits_a.contains(&i), hits_b.contains(&i));
            let verdict = if in_a == in_b {
                Verdict::Equal
            } else {
                judge_search(&traits(email))
            };
            let matches = |hit: bool| if hit { "matches" } else { "does not match" }.to_string();
            tally.record(verdict, || Difference {
                email: email.name.clone(),
                item: item.clone(),
                ours: matches(in_a),
                theirs: matches(in_b),
            });
        }
    }
}

/// Prints the counts, every exception with its first differences (all with
/// `DIFFERENTIAL_VERBOSE`), and every unlisted difference.
fn report(emails: usize, tally: &Tally) {
    println!("\n=== differential test against Dovecot: {emails} emails ===");
    println!("equal:                  {}", tally.equal);
    println!("deliberately different: {}", tally.count(Kind::Deliberate));
    println!("known gaps (to fix):    {}", tally.count(Kind::Gap));
    println!("wrong (unlisted):       {}", tally.wrong.len());
    println!(
        "\n{:<48} {:>7} {:>9} {:>6}",
        "item", "equal", "excepted", "wrong"
    );
    for (kind, [e, x, w]) in &tally.by_kind {
        println!("{kind:<48} {e:>7} {x:>9} {w:>6}");
    }
    for e in EXCEPTIONS {
        let list = tally.excepted.get(e.name).map(Vec::as_slice).unwrap_or(&[]);
        println!(
            "\n[{:?}] {}: {} differences. {}",
            e.kind,
            e.name,
            list.len(),
            e.reason
        );
        let shown = if std::env::var_os("DIFFERENTIAL_VERBOSE").is_some() {
            list.len()
        } else {
            5
        };
        for d in list.iter().take(shown) {
            println!(
                "  {} {}\n    ours:    {}\n    dovecot: {}",
                d.email, d.item, d.ours, d.theirs
            );
        }
        if list.is_empty() {
            println!("  STALE: this exception matched nothing; remove it if the gap is fixed.");
        }
    }
    if !tally.wrong.is_empty() {
        println!("\n=== unlisted differences ===");
        for d in &tally.wrong {
            println!(
                "{} {}\n  ours:    {}\n  dovecot: {}",
                d.email, d.item, d.ours, d.theirs
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_and_search_answers_match_dovecot_or_a_named_exception() {
    let Some(dovecot) = start_dovecot() else {
        return;
    };
    let mut peers = Peers::login(start_ours().await, &dovecot).await;
    let emails = emails();
    let mut tally = Tally::default();
    let seqs = append_all(&mut peers, &emails, &mut tally).await;
    let (a, b) = peers.both(b"SELECT INBOX").await;
    assert!(
        a.ok() && b.ok(),
        "SELECT: ours {}, dovecot {}",
        a.tagged,
        b.tagged
    );
    for (email, seq) in emails.iter().zip(&seqs) {
        if let (Some(sa), Some(sb)) = *seq {
            compare_fetches(&mut peers, email, (sa, sb), &mut tally).await;
        }
    }
    compare_searches(&mut peers, &emails, &seqs, &mut tally).await;
    let _ = peers.ours.run(b"LOGOUT").await;
    let _ = peers.theirs.run(b"LOGOUT").await;
    report(emails.len(), &tally);
    assert!(tally.equal > 0, "nothing was compared");
    assert!(
        tally.wrong.is_empty(),
        "{} differences from Dovecot are neither fixed nor a named exception (listed above)",
        tally.wrong.len()
    );
}
