//! Password change (`server::auth::change_password`): the user's secret key is wrapped again under
//! the new password with a fresh argon2id salt, the old password stops working, mail stays readable
//! byte for byte, and logins or other changes running at the same time never corrupt the key row
//! (the write carries the K2V causality token of the row it read).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{tagged, Client};
use server::auth::{change_password, AuthError};
use server::config::Limits;
use server::crypto::WrappedKey;
use server::Server;
use tokio::io::AsyncReadExt;

const OLD: &str = "alice-pw";

/// A message with 8-bit bytes and more than one body chunk's worth of text.
fn message() -> Vec<u8> {
    let mut m = b"From: alice@example.org\r\nSubject: keys\r\n\r\n".to_vec();
    for i in 0..2_000 {
        m.extend_from_slice(format!("line {i} ").as_bytes());
        m.extend_from_slice(b"caf\xc3\xa9 \xff\r\n");
    }
    m
}

/// Another server instance on the same store, as an administrator's tool would run: it serves
/// the fake store on fresh loopback ports and connects to those. `seed` keeps instances apart.
async fn another_instance(started: &common::Started, seed: u64) -> Server {
    common::Setup::new()
        .user("alice", OLD)
        .seed(100 + seed)
        .hostname(&format!("admin{seed}"))
        .server_on(&started.fake)
        .await
}

/// The values of alice's key row, decoded.
fn key_row(started: &common::Started) -> Vec<WrappedKey> {
    let user = server::mail::layout::user_id("alice");
    let (pk, sk) = server::mail::layout::keys_row(&user);
    let rows = started.fake.rows();
    let (_, _, values) = rows
        .iter()
        .find(|(p, s, _)| *p == pk && s == sk)
        .expect("alice has a key row");
    values
        .iter()
        .flatten()
        .map(|v| postcard::from_bytes(v).expect("a well-formed wrapped key"))
        .collect()
}

/// Logs in with IMAP: the tagged status line.
async fn imap_login(started: &common::Started, password: &str) -> String {
    let mut c = Client::connect(started.imap).await;
    tagged(&c.run("l", &format!("LOGIN alice {password}")).await).to_string()
}

/// Logs in, appends `message` to INBOX, logs out.
async fn append(started: &common::Started, password: &str, message: &[u8]) {
    let mut c = Client::connect(started.imap).await;
    assert!(tagged(&c.run("a", &format!("LOGIN alice {password}")).await).starts_with("a OK"));
    c.send(format!("b APPEND INBOX {{{}+}}\r\n", message.len()).as_bytes())
        .await;
    c.send(message).await;
    c.send(b"\r\n").await;
    assert!(tagged(&c.until("b").await).starts_with("b OK"));
}

/// Logs in with `password` and fetches every message's body.
async fn read_all(started: &common::Started, password: &str) -> Vec<Vec<u8>> {
    let mut c = Client::connect(started.imap).await;
    assert!(tagged(&c.run("r", &format!("LOGIN alice {password}")).await).starts_with("r OK"));
    let select = c.run("s", "SELECT INBOX").await;
    assert!(tagged(&select).starts_with("s OK"), "{select:?}");
    c.send(b"f FETCH 1:* BODY.PEEK[]\r\n").await;
    let mut bodies = Vec::new();
    loop {
        let (line, literal) = c.line_with_literal().await;
        assert!(!line.is_empty(), "connection closed");
        if line.starts_with("f ") {
            assert!(line.starts_with("f OK"), "{line}");
            return bodies;
        }
        if line.contains("BODY[] {") {
            bodies.push(literal);
            let mut close = [0u8; 3];
            c.reader.read_exact(&mut close).await.expect("end of FETCH");
            assert_eq!(&close, b")\r\n");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_rewraps_the_key_so_the_old_password_fails_and_mail_reads_back() {
    let started = common::start(Limits {
        auth_failure_delay_ms: 5,
        ..Limits::default()
    })
    .await;
    let m = message();
    append(&started, OLD, &m).await;
    let before = key_row(&started);
    assert_eq!(before.len(), 1);
    let admin = another_instance(&started, 1).await;

    // A wrong old password changes nothing.
    assert!(matches!(
        change_password(&admin, "alice", b"not-it", b"new-pw").await,
        Err(AuthError::InvalidCredentials)
    ));
    assert_eq!(key_row(&started), before);

    change_password(&admin, "alice", OLD.as_bytes(), b"new-pw")
        .await
        .expect("the change succeeds");
    let after = key_row(&started);
    assert_eq!(
        after.len(),
        1,
        "one value: the write superseded the old one"
    );
    assert_ne!(after[0].salt, before[0].salt, "a new salt");
    let old_key = before[0].unwrap_key(OLD.as_bytes()).expect("the old wrap");
    let new_key = after[0].unwrap_key(b"new-pw").expect("the new wrap");
    assert_eq!(
        new_key.to_bytes(),
        old_key.to_bytes(),
        "the same secret key"
    );
    assert!(after[0].unwrap_key(OLD.as_bytes()).is_err());

    let old = imap_login(&started, OLD).await;
    assert!(old.starts_with("l NO [AUTHENTICATIONFAILED]"), "{old}");
    assert_eq!(read_all(&started, "new-pw").await, vec![m.clone()]);
    // Mail appended under the new password reads back with the old mail.
    append(&started, "new-pw", b"Subject: after\r\n\r\nafter\r\n").await;
    let bodies = read_all(&started, "new-pw").await;
    assert_eq!(bodies, vec![m, b"Subject: after\r\n\r\nafter\r\n".to_vec()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_user_who_never_logged_in_can_change_their_password() {
    let started = common::start(Limits::default()).await;
    let admin = another_instance(&started, 2).await;
    change_password(&admin, "alice", OLD.as_bytes(), b"first-pw")
        .await
        .expect("provisioned under the configured password, then changed");
    assert_eq!(key_row(&started).len(), 1);
    assert!(imap_login(&started, OLD).await.starts_with("l NO"));
    assert!(imap_login(&started, "first-pw").await.starts_with("l OK"));
    assert!(matches!(
        change_password(&admin, "nobody", b"x", b"y").await,
        Err(AuthError::InvalidCredentials)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_and_changes_running_at_once_never_corrupt_the_key_row() {
    let started = common::start(Limits::default()).await;
    let m = message();
    append(&started, OLD, &m).await;
    let original = key_row(&started)[0]
        .unwrap_key(OLD.as_bytes())
        .expect("the first wrap")
        .to_bytes();

    // Logins on three other instances, with the old and the new passwords, all through the change.
    let changed = Arc::new(AtomicBool::new(false));
    let mut logins = Vec::new();
    for seed in 0..3u64 {
        let instance = another_instance(&started, 10 + seed).await;
        let changed = changed.clone();
        logins.push(tokio::spawn(async move {
            let mut rounds_after = 0;
            let mut outcomes = Vec::new();
            while rounds_after < 5 {
                let done = changed.load(Ordering::SeqCst);
                for password in [OLD, "new-1", "new-2"] {
                    let result = server::auth::login(&instance, "alice", password.as_bytes()).await;
                    match result {
                        Ok(_) | Err(AuthError::InvalidCredentials) => {}
                        Err(e) => panic!("login with {password} during the change: {e}"),
                    }
                    outcomes.push((done, password, result.is_ok()));
                }
                rounds_after += usize::from(done);
            }
            outcomes
        }));
    }
    // Two changes from the same old password at once, on two more instances.
    let (a, b) = (
        another_instance(&started, 20).await,
        another_instance(&started, 21).await,
    );
    let (first, second) = tokio::join!(
        change_password(&a, "alice", OLD.as_bytes(), b"new-1"),
        change_password(&b, "alice", OLD.as_bytes(), b"new-2"),
    );
    changed.store(true, Ordering::SeqCst);
    for (which, result) in [("new-1", &first), ("new-2", &second)] {
        assert!(
            matches!(result, Ok(()) | Err(AuthError::InvalidCredentials)),
            "{which}: {result:?}"
        );
    }
    assert!(first.is_ok() || second.is_ok(), "one change went through");
    let mut outcomes = Vec::new();
    for login in logins {
        outcomes.extend(login.await.expect("no login task panicked"));
    }

    // Every value of the row wraps the same key under a new password; the old one opens none.
    let row = key_row(&started);
    assert!(!row.is_empty() && row.len() <= 2, "{} values", row.len());
    let mut working = Vec::new();
    for wrapped in &row {
        assert!(wrapped.unwrap_key(OLD.as_bytes()).is_err());
        let (password, key) = ["new-1", "new-2"]
            .iter()
            .find_map(|p| wrapped.unwrap_key(p.as_bytes()).ok().map(|k| (*p, k)))
            .expect("every value opens with one of the new passwords");
        assert_eq!(key.to_bytes(), original, "the same secret key");
        working.push(password);
    }
    // Once the changes returned, the old password never worked again.
    assert!(
        !outcomes
            .iter()
            .any(|(after, p, ok)| *after && *p == OLD && *ok),
        "the old password worked after the change"
    );
    assert!(imap_login(&started, OLD).await.starts_with("l NO"));
    for password in working {
        assert_eq!(read_all(&started, password).await, vec![m.clone()]);
    }
}
