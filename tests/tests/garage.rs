//! Against a real single-node Garage 2.5.0 started by `scripts/garage.sh` (one per test, on free
//! loopback ports): the storage client's shared suite; `imapsim serve` on Garage driven by the
//! trace workload over TCP, every message then fetched back byte-exact and Garage's files scanned
//! for the plaintext of every email; two `imapsim serve` processes serving one user at once,
//! converging.
//!
//! Skipped, with the reason printed, unless Garage's binary is in the cache
//! (`${IMAPSIM_CACHE:-$HOME/.cache/imapsim}/garage/bin/garage`, see `scripts/garage.sh install`)
//! or `IMAPSIM_GARAGE=1` is set (then the script installs it: ~30-60 minutes of compiling).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bench::compare::ServeChild;
use bench::load::{LoadOptions, Workload};
use imap_proto::{AttributeValue, MailboxDatum, Response, Status};
use server::env::Env;
use server::storage::{suite, StorageConfig, Store};
use tokio::net::TcpStream;
use workload::client::{ImapClient, Reply};

sim::simulation_binary!();

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/garage.sh");
/// Length of the plaintext fragments looked for in Garage's files.
const NEEDLE_BYTES: usize = 32;
/// How long two servers may take to show one state.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the script caches Garage's binary.
fn cached_binary() -> PathBuf {
    let cache = std::env::var_os("IMAPSIM_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
            Path::new(&home).join(".cache").join("imapsim")
        });
    cache.join("garage").join("bin").join("garage")
}

/// Whether these tests run here; prints why not.
fn garage_enabled() -> bool {
    let forced = std::env::var("IMAPSIM_GARAGE").is_ok_and(|v| v == "1");
    if cached_binary().is_file() || forced {
        return true;
    }
    let banner = format!(
        "\n********** SKIPPED: no Garage binary at {} and IMAPSIM_GARAGE is not 1 \
         (scripts/garage.sh install builds it, ~30-60 minutes); not testing against Garage **********\n\n",
        cached_binary().display()
    );
    // Straight to stderr: the test harness would capture `eprintln!`.
    let _ = std::io::Write::write_all(&mut std::io::stderr(), banner.as_bytes()); // best effort: only a notice
    false
}

/// A running node (the script's `start`), stopped and removed when dropped (kept on failure).
struct Garage {
    dir: PathBuf,
    env: BTreeMap<String, String>,
}

impl Garage {
    fn start(name: &str) -> Garage {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("garage-{name}-{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).expect("remove an old node folder");
        }
        let started = Instant::now();
        let output = Command::new("bash")
            .arg(SCRIPT)
            .arg("start")
            .arg(&dir)
            .output()
            .expect("run scripts/garage.sh");
        assert!(
            output.status.success(),
            "scripts/garage.sh start failed: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let text = std::fs::read_to_string(dir.join("garage.env")).expect("garage.env written");
        let env: BTreeMap<String, String> = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        println!(
            "garage {name}: ready in {:.1} s at S3 {}, K2V {}",
            started.elapsed().as_secs_f64(),
            env["GARAGE_S3_ENDPOINT"],
            env["GARAGE_K2V_ENDPOINT"]
        );
        Garage { dir, env }
    }

    fn var(&self, name: &str) -> &str {
        self.env
            .get(name)
            .unwrap_or_else(|| panic!("garage.env has no {name}"))
    }

    fn storage(&self) -> StorageConfig {
        StorageConfig {
            s3_endpoint: self.var("GARAGE_S3_ENDPOINT").into(),
            k2v_endpoint: self.var("GARAGE_K2V_ENDPOINT").into(),
            region: self.var("GARAGE_REGION").into(),
            bucket: self.var("GARAGE_BUCKET").into(),
            key_id: self.var("GARAGE_KEY_ID").into(),
            secret: self.var("GARAGE_SECRET").into(),
            ..StorageConfig::default()
        }
    }

    fn serve_config(&self) -> PathBuf {
        self.dir.join("serve.toml")
    }

    fn serve(&self, name: &str, users: &[(String, String)]) -> ServeChild {
        let binary = bench::compare::imapsim_binary().expect("the imapsim binary builds");
        ServeChild::start(
            &binary,
            Some(&self.serve_config()),
            users,
            &self.dir.join(format!("serve-{name}.log")),
        )
        .expect("imapsim serve starts on Garage")
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        let action = if std::thread::panicking() {
            eprintln!(
                "Garage's folder is kept for inspection: {}",
                self.dir.display()
            );
            "stop"
        } else {
            "clean"
        };
        let status = Command::new("bash")
            .arg(SCRIPT)
            .arg(action)
            .arg(&self.dir)
            .status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("scripts/garage.sh {action} {} failed", self.dir.display());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_storage_suite_passes_against_garage() {
    if !garage_enabled() {
        return;
    }
    let garage = Garage::start("suite");
    let started = Instant::now();
    let store = Store::new(garage.storage(), Env::production());
    suite::run_all(&store).await;
    println!(
        "shared suite on Garage: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------------------------
// Plaintext scan

/// Fixed-length fragments of the emails, searched with a rolling hash (Rabin-Karp).
struct Needles {
    by_hash: BTreeMap<u64, Vec<(usize, [u8; NEEDLE_BYTES])>>,
}

const BASE: u64 = 257;

fn hash(window: &[u8]) -> u64 {
    window.iter().fold(0u64, |h, &b| {
        h.wrapping_mul(BASE).wrapping_add(u64::from(b))
    })
}

impl Needles {
    /// Fragments of each email: its Subject line's start and three windows of its bytes (at a
    /// quarter, half and three quarters), each varied enough (12 distinct bytes or more) not to
    /// match padding by chance. `emails[i]` names fragments by `i`.
    fn of(emails: &[Vec<u8>]) -> Needles {
        let mut by_hash: BTreeMap<u64, Vec<(usize, [u8; NEEDLE_BYTES])>> = BTreeMap::new();
        for (i, email) in emails.iter().enumerate() {
            let mut starts = Vec::new();
            if let Some(at) = email.windows(9).position(|w| w == b"Subject: ") {
                starts.push(at);
            }
            starts.extend([email.len() / 4, email.len() / 2, 3 * email.len() / 4]);
            for start in starts {
                let Some(window) = email.get(start..start + NEEDLE_BYTES) else {
                    continue;
                };
                if window.iter().collect::<BTreeSet<_>>().len() < 12 {
                    continue;
                }
                let needle: [u8; NEEDLE_BYTES] = window.try_into().expect("sliced to length");
                by_hash.entry(hash(window)).or_default().push((i, needle));
            }
        }
        Needles { by_hash }
    }

    fn len(&self) -> usize {
        self.by_hash.values().map(Vec::len).sum()
    }

    /// The emails (indexes) with a fragment in `data`.
    fn find(&self, data: &[u8], found: &mut BTreeSet<usize>) {
        if data.len() < NEEDLE_BYTES {
            return;
        }
        let top = (0..NEEDLE_BYTES - 1).fold(1u64, |p, _| p.wrapping_mul(BASE));
        let mut h = hash(&data[..NEEDLE_BYTES]);
        for start in 0..=data.len() - NEEDLE_BYTES {
            if start > 0 {
                let out = u64::from(data[start - 1]);
                let inn = u64::from(data[start + NEEDLE_BYTES - 1]);
                h = h
                    .wrapping_sub(out.wrapping_mul(top))
                    .wrapping_mul(BASE)
                    .wrapping_add(inn);
            }
            if let Some(candidates) = self.by_hash.get(&h) {
                for (i, needle) in candidates {
                    if &data[start..start + NEEDLE_BYTES] == needle {
                        found.insert(*i);
                    }
                }
            }
        }
    }
}

/// Every file under `dir`, recursively.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else if path.is_file() {
            out.push(path);
        }
    }
}

/// Scans every file under `dirs`; returns (bytes scanned, emails found).
fn scan(dirs: &[PathBuf], needles: &Needles) -> (u64, BTreeSet<usize>) {
    let mut all = Vec::new();
    for dir in dirs {
        files(dir, &mut all);
    }
    let mut found = BTreeSet::new();
    let mut bytes = 0;
    for file in all {
        if let Ok(data) = std::fs::read(&file) {
            bytes += data.len() as u64;
            needles.find(&data, &mut found);
        }
    }
    (bytes, found)
}

#[test]
fn plaintext_scan_finds_a_planted_email_and_ignores_others() {
    let emails: Vec<Vec<u8>> = (0..3)
        .map(|i| traces::dataset::email(7, i, 20_000).bytes)
        .collect();
    let needles = Needles::of(&emails);
    assert!(
        needles.len() >= 9,
        "fragments of 3 emails: {}",
        needles.len()
    );
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("scan-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).expect("scratch folder");
    let mut planted = vec![0u8; 5000];
    planted.extend_from_slice(&emails[1]);
    planted.extend_from_slice(&[0xff; 100]);
    std::fs::write(dir.join("sub").join("blob"), planted).expect("write");
    std::fs::write(dir.join("other"), b"nothing to see here".repeat(1000)).expect("write");
    let (bytes, found) = scan(std::slice::from_ref(&dir), &needles);
    assert_eq!(found, BTreeSet::from([1]));
    assert!(bytes > 20_000);
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn trace_over_tcp_on_garage_is_fetched_back_byte_exact_and_stored_encrypted() {
    if !garage_enabled() {
        return;
    }
    let garage = Garage::start("trace");
    let users = bench::compare::users(4);
    let serve = garage.serve("trace", &users);
    let options = LoadOptions {
        imap: serve.imap.clone(),
        lmtp: Some(serve.lmtp.clone()),
        users: users.clone(),
        workload: Workload::TraceReplay,
        pid: Some(serve.pid()),
        max_seconds: 1_800,
        label: "imapsim on garage".into(),
        ..LoadOptions::default()
    };
    let started = Instant::now();
    let run = bench::load::run_blocking(&options).expect("the load driver starts");
    let report = &run.report;
    println!(
        "trace on Garage: {:.1} s\n{}",
        started.elapsed().as_secs_f64(),
        bench::load::summary(report)
    );
    let out = bench::load::output_dir().with_file_name("garage");
    bench::load::write(&out, &[&run]).expect("figures written");
    assert!(
        report.is_clean() && !report.timed_out,
        "the trace on Garage: {} unexpected, {} unparsable, {} mismatches, {} broken:\n{}",
        report.unexpected,
        report.unparsable,
        report.mismatches,
        report.broken,
        report.failures.join("\n")
    );
    let workload = workload::trace_replay::generated(options.seed, users.len(), None)
        .expect("the trace workload generates");
    let model = workload.check().expect("the workload checks");
    let expected: usize = model
        .users
        .iter()
        .flat_map(|u| u.mailboxes.values())
        .map(|m| m.messages.len())
        .sum();
    assert_eq!(
        report.figures.get("verified_messages").copied(),
        Some(expected as u64),
        "every message the mailboxes hold was fetched back byte-exact"
    );
    drop(serve);

    // Every email that reached the server, set up or appended by the trace.
    let mut refs = BTreeSet::new();
    for step in &workload.setup {
        if let traces::workload::SetupStep::Deliver { email, .. } = step {
            refs.insert(*email);
        }
    }
    for step in workload.sessions.iter().flat_map(|s| &s.commands) {
        if let traces::workload::StepCommand::Append(append) = &step.command {
            refs.insert(append.email);
        }
    }
    let emails: Vec<Vec<u8>> = refs
        .iter()
        .map(|r| r.email().expect("dataset email").bytes)
        .collect();
    let email_bytes: u64 = emails.iter().map(|e| e.len() as u64).sum();
    let needles = Needles::of(&emails);
    let started = Instant::now();
    let (scanned, found) = scan(
        &[
            PathBuf::from(garage.var("GARAGE_DATA_DIR")),
            PathBuf::from(garage.var("GARAGE_META_DIR")),
        ],
        &needles,
    );
    println!(
        "scanned {scanned} bytes of Garage's files for {} fragments of {} emails ({email_bytes} bytes) in {:.1} s",
        needles.len(),
        emails.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        scanned >= email_bytes,
        "Garage holds at least the emails' size ({scanned} < {email_bytes}): the scan saw the store"
    );
    assert!(
        found.is_empty(),
        "plaintext of {} emails found in Garage's files (emails {:?})",
        found.len(),
        found
    );
}

// ---------------------------------------------------------------------------------------------
// Two servers, one user

/// A test session on one server.
struct Imap {
    client: ImapClient<TcpStream>,
    name: &'static str,
}

/// One message as a server shows it: UID, flags (sorted, \Recent left out), body digest.
type Shown = (u32, Vec<String>, Vec<u8>);
/// A mailbox's messages by body digest.
type Messages = BTreeMap<Vec<u8>, Shown>;

impl Imap {
    async fn login(addr: &str, name: &'static str, user: &(String, String)) -> Imap {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (client, _) = ImapClient::connect(stream).await.expect("greeting");
        let mut imap = Imap { client, name };
        imap.ok(&format!("LOGIN \"{}\" \"{}\"", user.0, user.1))
            .await;
        imap
    }

    async fn ok(&mut self, command: &str) -> Reply {
        let reply = self
            .client
            .command(command)
            .await
            .unwrap_or_else(|e| panic!("{}: {command}: {e}", self.name));
        assert!(
            reply.is_ok(),
            "{}: {command}: {:?}",
            self.name,
            reply.responses.last().map(|r| String::from_utf8_lossy(r))
        );
        reply
    }

    async fn append(&mut self, email: &[u8]) {
        let reply = self
            .client
            .command_with_literal("APPEND INBOX", email, Status::Ok)
            .await
            .unwrap_or_else(|e| panic!("{}: APPEND: {e}", self.name));
        assert!(reply.is_ok(), "{}: APPEND refused", self.name);
    }

    /// The messages of `mailbox`, by body digest.
    async fn mailbox(&mut self, mailbox: &str) -> Messages {
        let select = self.ok(&format!("SELECT {mailbox}")).await;
        let count = select.parsed().find_map(|r| match r {
            Response::MailboxData(MailboxDatum::Exists(n)) => Some(n),
            _ => None,
        });
        let mut out = BTreeMap::new();
        if count.unwrap_or(0) == 0 {
            return out;
        }
        let fetch = self.ok("UID FETCH 1:* (UID FLAGS BODY.PEEK[])").await;
        for response in fetch.parsed() {
            let Response::Fetch(_, attributes) = response else {
                continue;
            };
            let mut uid = 0;
            let mut flags = Vec::new();
            let mut body = Vec::new();
            for a in attributes {
                match a {
                    AttributeValue::Uid(u) => uid = u,
                    AttributeValue::Flags(f) => {
                        flags = f
                            .iter()
                            .map(|f| f.to_string())
                            .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
                            .collect()
                    }
                    AttributeValue::BodySection { data: Some(d), .. } => body = d.to_vec(),
                    _ => {}
                }
            }
            flags.sort();
            let digest = digest(&body);
            out.insert(digest.clone(), (uid, flags, digest));
        }
        out
    }

    async fn uid_of(&mut self, email: &[u8]) -> u32 {
        let inbox = self.mailbox("INBOX").await;
        inbox
            .get(&digest(email))
            .unwrap_or_else(|| panic!("{}: the email is not in INBOX", self.name))
            .0
    }

    /// Sets a flag, deletes and expunges one email, moves another to Archive.
    async fn change(&mut self, flag: &str, flagged: &[u8], expunged: &[u8], moved: &[u8]) {
        let uid = self.uid_of(flagged).await;
        self.ok(&format!("UID STORE {uid} +FLAGS ({flag})")).await;
        let uid = self.uid_of(expunged).await;
        self.ok(&format!("UID STORE {uid} +FLAGS (\\Deleted)"))
            .await;
        self.ok("EXPUNGE").await;
        let uid = self.uid_of(moved).await;
        self.ok(&format!("UID MOVE {uid} Archive")).await;
    }
}

fn digest(bytes: &[u8]) -> Vec<u8> {
    use blake2::Digest as _;
    blake2::Blake2b512::digest(bytes).to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serve_processes_on_one_garage_converge() {
    if !garage_enabled() {
        return;
    }
    let garage = Garage::start("two");
    let user = ("alice@imapsim.test".to_string(), "alice-pw".to_string());
    let users = vec![user.clone()];
    let (serve_a, serve_b) = (garage.serve("a", &users), garage.serve("b", &users));
    let started = Instant::now();
    let emails: Vec<Vec<u8>> = (0..6)
        .map(|i| traces::dataset::email(11, i, 3_000 + 500 * i as u64).bytes)
        .collect();
    // The first login sets the user's keys up; the second server then finds them.
    let mut a = Imap::login(&serve_a.imap, "A", &user).await;
    a.ok("SELECT INBOX").await;
    let mut b = Imap::login(&serve_b.imap, "B", &user).await;

    // Both APPEND at once.
    tokio::join!(
        async {
            for e in &emails[..3] {
                a.append(e).await;
            }
        },
        async {
            for e in &emails[3..] {
                b.append(e).await;
            }
        }
    );
    wait_until(&mut a, &mut b, |inbox, _| inbox.len() == 6).await;

    // Both STORE, EXPUNGE and MOVE at once, on different messages.
    tokio::join!(
        a.change("\\Flagged", &emails[0], &emails[1], &emails[2]),
        b.change("\\Seen", &emails[3], &emails[4], &emails[5]),
    );
    let (inbox, archive) = wait_until(&mut a, &mut b, |inbox, archive| {
        inbox.len() == 2 && archive.len() == 2
    })
    .await;
    let flags = |e: &Vec<u8>| inbox[&digest(e)].1.clone();
    assert_eq!(flags(&emails[0]), vec!["\\Flagged".to_string()]);
    assert_eq!(flags(&emails[3]), vec!["\\Seen".to_string()]);
    for moved in [&emails[2], &emails[5]] {
        assert!(archive.contains_key(&digest(moved)), "moved to Archive");
    }
    println!(
        "two servers converged in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    a.ok("LOGOUT").await;
    b.ok("LOGOUT").await;
}

/// Polls both servers until they show the same INBOX and Archive and `done` holds for them;
/// returns that state. Fails after [`CONVERGE_TIMEOUT`].
async fn wait_until(
    a: &mut Imap,
    b: &mut Imap,
    done: impl Fn(&Messages, &Messages) -> bool,
) -> (Messages, Messages) {
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    loop {
        let state_a = (a.mailbox("INBOX").await, a.mailbox("Archive").await);
        let state_b = (b.mailbox("INBOX").await, b.mailbox("Archive").await);
        if state_a == state_b && done(&state_a.0, &state_a.1) {
            return state_a;
        }
        assert!(
            Instant::now() < deadline,
            "no convergence within {CONVERGE_TIMEOUT:?}:\nA: {:?}\nB: {:?}",
            summary(&state_a),
            summary(&state_b)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// (UID, flags) per mailbox, for failure messages.
fn summary(state: &(Messages, Messages)) -> [Vec<(u32, Vec<String>)>; 2] {
    let list = |m: &Messages| {
        let mut v: Vec<(u32, Vec<String>)> = m.values().map(|(u, f, _)| (*u, f.clone())).collect();
        v.sort();
        v
    };
    [list(&state.0), list(&state.1)]
}
