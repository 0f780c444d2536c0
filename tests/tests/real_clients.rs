//! Conformance with real IMAP clients on loopback TCP: Python's imaplib drives the command surface
//! (`tests/clients/imaplib_surface.py`) and isync's mbsync syncs a Maildir with the server both ways.
//!
//! Each test starts fakes3 and the server on ports the OS picks. A missing `python3` or `mbsync`
//! fails the test when `CI` is set (CI installs them, see `.ci/run`) and skips it loudly otherwise.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use server::config::Limits;
use tokio::process::Command;

mod imap_client;

use imap_client::{to_crlf, trailing_literal, Conn};

const USER: &str = "alice";
const PASSWORD: &str = "alice-pw";
/// Longest a client program may run before the test kills it and fails.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(180);

/// Starts fakes3 and one server with user alice on loopback, on ports the OS picks.
async fn start_loopback() -> tests::loopback::Loopback {
    // A short penalty for the wrong-password check; everything else as in production.
    let limits = Limits {
        auth_failure_delay_ms: 50,
        ..Limits::default()
    };
    tests::loopback::start(USER, PASSWORD, limits, "real-clients").await
}

/// Whether `program` runs here. When it does not: a failure under CI, a loud skip elsewhere.
async fn tool_available(program: &str, package: &str) -> bool {
    let probe = Command::new(program)
        .arg("--version")
        .kill_on_drop(true)
        .output()
        .await;
    if probe.is_ok() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "`{program}` is missing but CI is set: .ci/run must install the `{package}` package"
        );
    }
    // Written to the process's stderr directly: the test harness would capture `eprintln!`.
    let banner = format!("\n********** SKIPPED: `{program}` not found (apt-get install {package}); not testing it **********\n\n");
    let _ = std::io::Write::write_all(&mut std::io::stderr(), banner.as_bytes()); // best effort: it is only a notice
    false
}

/// Runs a client program to completion within [`CLIENT_TIMEOUT`], failing the test with its
/// output unless it exits with status 0. Returns its output.
async fn run_client(what: &str, command: &mut Command) -> Output {
    command
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null());
    let output = match tokio::time::timeout(CLIENT_TIMEOUT, command.output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => panic!("{what}: could not run {command:?}: {e}"),
        Err(_) => panic!("{what}: {command:?} still running after {CLIENT_TIMEOUT:?}; killed"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{what} failed ({}): {command:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        output.status
    );
    println!("{what}: ok\n{stdout}{stderr}");
    output
}

/// A fresh scratch directory for one test, under cargo's temporary directory for integration tests.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("real_clients-{name}-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("remove an old scratch directory");
    }
    std::fs::create_dir_all(&dir).expect("create the scratch directory");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_imaplib_drives_the_whole_command_surface() {
    if !tool_available("python3", "python3").await {
        return;
    }
    let server = start_loopback().await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/imaplib_surface.py");
    let output = run_client(
        "imaplib_surface.py",
        Command::new("python3")
            .arg(&script)
            .arg(server.imap.ip().to_string())
            .arg(server.imap.port().to_string())
            .arg(server.lmtp.port().to_string())
            .arg(USER)
            .arg(PASSWORD),
    )
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("checks passed"),
        "the script did not reach its end:\n{stdout}"
    );
}

// ---------------------------------------------------------------------------------------------
// mbsync

/// One message as both sides hold it: flags as IMAP system flags, and its bytes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Mail {
    flags: Vec<String>,
    body: Vec<u8>,
}

/// Maildir info letters (the `:2,` suffix) and the IMAP flags they stand for, in Maildir order.
const MAILDIR_FLAGS: [(char, &str); 4] = [
    ('D', "\\Draft"),
    ('F', "\\Flagged"),
    ('R', "\\Answered"),
    ('S', "\\Seen"),
];

/// Every message file of one Maildir folder (cur/ and new/), with its file name, listed before
/// any is renamed.
fn maildir_files(folder: &Path) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    for sub in ["cur", "new"] {
        let dir = folder.join(sub);
        let entries =
            std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("read a Maildir entry").path();
            let name = path
                .file_name()
                .expect("entries have names")
                .to_string_lossy()
                .into_owned();
            files.push((path, name));
        }
    }
    files
}

/// Reads every message of one Maildir folder (cur/ and new/), sorted.
fn read_maildir(folder: &Path) -> Vec<Mail> {
    let mut mails = Vec::new();
    for (path, name) in maildir_files(folder) {
        let letters = name
            .rsplit_once(":2,")
            .map(|(_, l)| l.to_string())
            .unwrap_or_default();
        let flags = MAILDIR_FLAGS
            .iter()
            .filter(|(c, _)| letters.contains(*c))
            .map(|(_, f)| f.to_string())
            .collect();
        let body = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        mails.push(Mail { flags, body });
    }
    mails.sort();
    mails
}

/// Writes one message into a Maildir folder: into cur/ with its flags, or new/ when it has none.
fn write_maildir(folder: &Path, unique: &str, mail: &Mail) {
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(folder.join(sub)).expect("create the Maildir folders");
    }
    let letters: String = MAILDIR_FLAGS
        .iter()
        .filter(|(_, f)| mail.flags.iter().any(|g| g == f))
        .map(|(c, _)| *c)
        .collect();
    let path = if letters.is_empty() {
        folder.join("new").join(unique)
    } else {
        folder.join("cur").join(format!("{unique}:2,{letters}"))
    };
    std::fs::write(&path, &mail.body).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// The Maildir form of messages held by the server: mbsync turns IMAP's CRLF line ends into LF
/// (and nothing else) when it writes a Maildir. `X-TUID:` lines are left out, see [`without_tuid`].
fn maildir_form(mails: &[Mail]) -> Vec<Mail> {
    with_bodies(mails, |body| {
        let mut lf = Vec::with_capacity(body.len());
        for (i, &b) in body.iter().enumerate() {
            if !(b == b'\r' && body.get(i + 1) == Some(&b'\n')) {
                lf.push(b);
            }
        }
        without_tuid(&lf)
    })
}

/// Messages with their `X-TUID:` lines left out, sorted, for comparing.
fn without_tuids(mails: &[Mail]) -> Vec<Mail> {
    with_bodies(mails, without_tuid)
}

/// `mails` with each body rewritten by `rewrite`, flags kept, sorted.
fn with_bodies(mails: &[Mail], rewrite: impl Fn(&[u8]) -> Vec<u8>) -> Vec<Mail> {
    let mut out: Vec<Mail> = mails
        .iter()
        .map(|m| Mail {
            flags: m.flags.clone(),
            body: rewrite(&m.body),
        })
        .collect();
    out.sort();
    out
}

/// Removes the `X-TUID:` header line mbsync (1.4) adds to every message it propagates, in either
/// direction, to find it again after storing it. Only header lines are looked at.
fn without_tuid(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut rest = body;
    let mut in_header = true;
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let (line, tail) = rest.split_at(end);
        if in_header && (line == b"\r\n" || line == b"\n") {
            in_header = false;
        }
        if !(in_header && line.len() > 7 && line[..7].eq_ignore_ascii_case(b"X-TUID:")) {
            out.extend_from_slice(line);
        }
        rest = tail;
    }
    out
}

/// The messages a test starts its local Maildir with: various sizes, line counts and flags.
fn local_messages(folder: &str, count: usize) -> Vec<Mail> {
    let flag_sets: [&[&str]; 5] = [
        &[],
        &["\\Seen"],
        &["\\Flagged", "\\Seen"],
        &["\\Answered", "\\Seen"],
        &["\\Draft"],
    ];
    (0..count)
        .map(|i| {
            let mut body = format!(
                "From: Sender {i} <s{i}@example.org>\nTo: alice@example.org\nSubject: {folder} message {i}\n\
                 Date: Tue, 2 Jan 2024 0{}:00:00 +0000\nMessage-ID: <{folder}-{i}@example.org>\n\n",
                i % 10
            );
            for line in 0..(1 + i * 37 % 200) {
                body.push_str(&format!(
                    "line {line} of message {i} in {folder}: {}\n",
                    "x".repeat(line % 70)
                ));
            }
            let flags = flag_sets[i % flag_sets.len()].iter().map(|f| f.to_string()).collect();
            Mail {
                flags,
                body: body.into_bytes(),
            }
        })
        .collect()
}

/// The test's own IMAP client, to look at what mbsync left on the server and to change it.
struct Imap {
    conn: Conn,
}

/// One untagged response: its text with each literal cut out, and the literals.
struct Untagged {
    text: String,
    literals: Vec<Vec<u8>>,
}

impl Untagged {
    /// `response` (literals inline, as [`Conn::run`] gives it) with its literals cut out.
    fn split(response: &[u8]) -> Untagged {
        let mut out = Untagged {
            text: String::new(),
            literals: Vec::new(),
        };
        let mut rest = response;
        loop {
            let end = rest
                .iter()
                .position(|&b| b == b'\n')
                .map_or(rest.len(), |i| i + 1);
            let (line, tail) = rest.split_at(end);
            out.text
                .push_str(String::from_utf8_lossy(line).trim_end_matches("\r\n"));
            // A line that ends in {n} is followed by n bytes of literal, then the rest.
            let Some(n) = trailing_literal(line) else {
                return out;
            };
            let (literal, after) = tail.split_at(n);
            out.literals.push(literal.to_vec());
            rest = after;
        }
    }
}

impl Imap {
    async fn login(addr: SocketAddr) -> Imap {
        let mut imap = Imap {
            conn: Conn::connect("the server", addr).await,
        };
        imap.ok(&format!("LOGIN {USER} {PASSWORD}")).await;
        imap
    }

    /// Sends `command` (with `literal` appended as a LITERAL+ literal) and returns its untagged
    /// responses, failing the test unless it completes with OK.
    async fn exchange(&mut self, command: &str, literal: Option<&[u8]>) -> Vec<Untagged> {
        let mut request = command.as_bytes().to_vec();
        if let Some(literal) = literal {
            request.extend_from_slice(format!(" {{{}+}}\r\n", literal.len()).as_bytes());
            request.extend_from_slice(literal);
        }
        let reply = self.conn.run(&request).await;
        assert!(
            reply.tagged.split(' ').nth(1) == Some("OK"),
            "{command}: {}",
            reply.tagged
        );
        reply.untagged.iter().map(|r| Untagged::split(r)).collect()
    }

    async fn ok(&mut self, command: &str) -> Vec<Untagged> {
        self.exchange(command, None).await
    }

    /// Every message of `mailbox` with its system flags, in IMAP form, sorted.
    async fn mailbox(&mut self, mailbox: &str) -> Vec<Mail> {
        self.ok(&format!("EXAMINE \"{mailbox}\"")).await;
        let mut mails = Vec::new();
        for response in self.ok("FETCH 1:* (FLAGS BODY.PEEK[])").await {
            if !response.text.contains(" FETCH ") {
                continue;
            }
            let flags_text = response
                .text
                .split_once("FLAGS (")
                .and_then(|(_, rest)| rest.split_once(')'))
                .map(|(flags, _)| flags.to_string())
                .unwrap_or_else(|| panic!("FETCH response without FLAGS: {}", response.text));
            let mut flags: Vec<String> = flags_text
                .split_whitespace()
                .filter(|f| MAILDIR_FLAGS.iter().any(|(_, g)| g == f))
                .map(str::to_string)
                .collect();
            flags.sort_by_key(|f| MAILDIR_FLAGS.iter().position(|(_, g)| g == f));
            let [body] = <[Vec<u8>; 1]>::try_from(response.literals).unwrap_or_else(|l| {
                panic!("FETCH BODY[] gave {} literals: {}", l.len(), response.text)
            });
            mails.push(Mail { flags, body });
        }
        self.ok("UNSELECT").await;
        mails.sort();
        mails
    }
}

/// Which isync syntax to write: 1.5 renamed `SSLType` to `TLSType`.
async fn mbsync_tls_keyword() -> &'static str {
    let output = Command::new("mbsync")
        .arg("--version")
        .output()
        .await
        .expect("mbsync --version runs");
    let version = String::from_utf8_lossy(&output.stdout).into_owned();
    let numbers: Vec<u32> = version
        .split_whitespace()
        .last()
        .unwrap_or("")
        .split('.')
        .map_while(|n| n.parse().ok())
        .collect();
    match numbers.as_slice() {
        [1, minor, ..] if *minor < 5 => "SSLType",
        [0, ..] => "SSLType",
        _ => "TLSType",
    }
}

/// An mbsync set-up syncing every folder of a local Maildir with the server.
struct Mbsync {
    config: PathBuf,
    maildir: PathBuf,
}

impl Mbsync {
    async fn new(dir: &Path, imap: SocketAddr) -> Mbsync {
        let maildir = dir.join("Mail");
        let tls = mbsync_tls_keyword().await;
        let config = format!(
            "IMAPAccount server\nHost {}\nPort {}\nUser {USER}\nPass {PASSWORD}\nAuthMechs LOGIN\n{tls} None\n\n\
             IMAPStore server\nAccount server\n\n\
             MaildirStore local\nPath {}/\nInbox {}/INBOX\nSubFolders Verbatim\n\n\
             Channel roundtrip\nFar :server:\nNear :local:\nPatterns *\nCreate Both\nExpunge Both\nSyncState *\n",
            imap.ip(),
            imap.port(),
            maildir.display(),
            maildir.display(),
        );
        let path = dir.join("mbsyncrc");
        std::fs::write(&path, config).expect("write mbsyncrc");
        Mbsync {
            config: path,
            maildir,
        }
    }

    async fn sync(&self, what: &str, direction: &str) {
        run_client(
            what,
            Command::new("mbsync")
                .arg("--config")
                .arg(&self.config)
                .arg("--verbose")
                .arg(direction)
                .arg("roundtrip"),
        )
        .await;
    }

    fn folder(&self, name: &str) -> PathBuf {
        self.maildir.join(name)
    }
}

/// Fails unless the Maildir folder holds exactly the server mailbox's messages, byte for byte once
/// mbsync's line-end conversion and `X-TUID:` lines are accounted for, with the same flags.
/// Returns the server's messages as they are.
async fn assert_in_sync(imap: &mut Imap, mbsync: &Mbsync, folder: &str, when: &str) -> Vec<Mail> {
    let on_server = imap.mailbox(folder).await;
    let local = without_tuids(&read_maildir(&mbsync.folder(folder)));
    let expected = maildir_form(&on_server);
    assert_eq!(
        local.len(),
        expected.len(),
        "{folder} {when}: Maildir and server hold different counts"
    );
    for (got, want) in local.iter().zip(&expected) {
        assert!(
            got == want,
            "{folder} {when}: Maildir and server differ:\n  Maildir: {:?} {:?}\n  server:  {:?} {:?}",
            got.flags,
            String::from_utf8_lossy(&got.body),
            want.flags,
            String::from_utf8_lossy(&want.body)
        );
    }
    on_server
}

/// Adds the Maildir flag `letter` to every message of a folder, by renaming (into cur/).
fn add_maildir_flag(folder: &Path, letter: char) {
    for (path, name) in maildir_files(folder) {
        let (base, letters) = name.rsplit_once(":2,").unwrap_or((&name, ""));
        let mut letters: Vec<char> = letters
            .chars()
            .filter(|&c| c != letter)
            .chain([letter])
            .collect();
        letters.sort_unstable();
        let renamed = folder.join("cur").join(format!(
            "{base}:2,{}",
            letters.into_iter().collect::<String>()
        ));
        std::fs::rename(&path, &renamed).expect("set a Maildir flag by renaming");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mbsync_round_trips_a_maildir_without_losing_a_byte_or_a_flag() {
    if !tool_available("mbsync", "isync").await {
        return;
    }
    let server = start_loopback().await;
    let dir = scratch_dir("mbsync");
    let mbsync = Mbsync::new(&dir, server.imap).await;
    let folders = ["INBOX", "Projects"];

    // 1. A local Maildir of two folders (one the server lacks), pushed to the server.
    let mut local: BTreeMap<&str, Vec<Mail>> = BTreeMap::new();
    local.insert("INBOX", local_messages("INBOX", 12));
    local.insert("Projects", local_messages("Projects", 5));
    for (folder, mails) in &local {
        for (i, mail) in mails.iter().enumerate() {
            write_maildir(
                &mbsync.folder(folder),
                &format!("1700000000.{i}_0.local"),
                mail,
            );
        }
    }
    mbsync.sync("mbsync --push", "--push").await;

    // 2. Every message arrived byte for byte (LF lines as CRLF, as IMAP wants), with its flags.
    let mut imap = Imap::login(server.imap).await;
    for folder in folders {
        let on_server = without_tuids(&imap.mailbox(folder).await);
        // mbsync turns the Maildir's LF line ends into IMAP's CRLF (always), nothing else.
        let expected = with_bodies(&local[folder], to_crlf);
        assert_eq!(
            on_server.len(),
            expected.len(),
            "{folder}: message count after push"
        );
        assert!(
            on_server == expected,
            "{folder}: the server's messages differ from the pushed Maildir"
        );
        assert_in_sync(&mut imap, &mbsync, folder, "after push").await;
    }

    // 3. Changes on the server side: new messages, flags set, cleared and replaced.
    let news = local_messages("Server", 3);
    for mail in &news {
        imap.exchange(
            &format!("APPEND INBOX ({})", mail.flags.join(" ")),
            Some(&to_crlf(&mail.body)),
        )
        .await;
    }
    imap.exchange("APPEND Projects (\\Flagged)", Some(&to_crlf(&news[0].body)))
        .await;
    imap.ok("SELECT INBOX").await;
    imap.ok("STORE 1 +FLAGS (\\Seen \\Flagged)").await;
    imap.ok("STORE 2 -FLAGS (\\Seen)").await;
    imap.ok("STORE 3 FLAGS (\\Answered)").await;
    imap.ok("UNSELECT").await;
    let mut server_state = BTreeMap::new();
    for folder in folders {
        server_state.insert(folder, imap.mailbox(folder).await);
    }
    assert_eq!(
        server_state["INBOX"].len(),
        15,
        "INBOX holds the 12 pushed and 3 appended messages"
    );

    // 4. Pulled down, the Maildir matches the server, and pulling changed nothing on the server.
    mbsync.sync("mbsync --pull", "--pull").await;
    for folder in folders {
        let now = assert_in_sync(&mut imap, &mbsync, folder, "after pull").await;
        assert!(
            now == server_state[folder],
            "{folder}: pulling changed the server"
        );
    }

    // 5. Local changes pushed again: \Answered on every INBOX message, and one new message.
    add_maildir_flag(&mbsync.folder("INBOX"), 'R');
    let late = local_messages("Late", 1).remove(0);
    write_maildir(&mbsync.folder("INBOX"), "1700000099.0_0.local", &late);
    mbsync
        .sync("mbsync --push (a flag and one new message)", "--push")
        .await;
    let inbox = assert_in_sync(&mut imap, &mbsync, "INBOX", "after the second push").await;
    assert_eq!(inbox.len(), 16, "INBOX holds the new local message");
    let answered = inbox
        .iter()
        .filter(|m| m.flags.iter().any(|f| f == "\\Answered"))
        .count();
    assert_eq!(
        answered, 15,
        "\\Answered set locally reached every older INBOX message"
    );
    let mut final_state = BTreeMap::new();
    for folder in folders {
        final_state.insert(folder, imap.mailbox(folder).await);
    }

    // 6. The local copy is lost; a pull into an empty Maildir brings everything back.
    let before_wipe: BTreeMap<&str, Vec<Mail>> = folders
        .iter()
        .map(|f| (*f, without_tuids(&read_maildir(&mbsync.folder(f)))))
        .collect();
    std::fs::remove_dir_all(&mbsync.maildir).expect("delete the local Maildir");
    std::fs::create_dir_all(&mbsync.maildir).expect("recreate the empty Maildir root");
    mbsync
        .sync("mbsync --pull into an empty Maildir", "--pull")
        .await;
    for folder in folders {
        let now = assert_in_sync(&mut imap, &mbsync, folder, "after the restore").await;
        assert!(
            now == final_state[folder],
            "{folder}: the restore changed the server"
        );
        let restored = without_tuids(&read_maildir(&mbsync.folder(folder)));
        assert!(
            restored == before_wipe[folder],
            "{folder}: the restored Maildir differs from the one before the wipe"
        );
    }
    imap.ok("LOGOUT").await;
    std::fs::remove_dir_all(&dir).expect("remove the scratch directory");
}
