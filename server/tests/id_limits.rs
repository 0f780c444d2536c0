//! ID (RFC 2971) at the RFC's own limits: 30 field/value pairs, fields of 30 octets, values of
//! 1,024 octets. Such a command is answered with `* ID` and OK, before login as after, and the
//! connection stays usable. (Dovecot answers it too.)

mod common;

use common::{tagged, Client};
use server::config::Limits;

/// An ID command at RFC 2971's limits: 30 pairs, each field 30 octets, each value 1,024.
fn largest_id() -> String {
    let pairs: Vec<String> = (0..30)
        .map(|i| {
            let field = format!("a{i:02}{}", "b".repeat(27));
            let value = format!("{i:02}{}", "v".repeat(1022));
            format!("\"{field}\" \"{value}\"")
        })
        .collect();
    format!("ID ({})", pairs.join(" "))
}

async fn answered(c: &mut Client, tag: &str) {
    let lines = c.run(tag, &largest_id()).await;
    assert!(lines.iter().any(|l| l.starts_with("* ID ")), "{lines:?}");
    assert!(
        tagged(&lines).starts_with(&format!("{tag} OK")),
        "{lines:?}"
    );
    let lines = c.run("n", "NOOP").await;
    assert!(tagged(&lines).starts_with("n OK"), "{lines:?}");
}

#[tokio::test]
async fn id_at_rfc2971_limits_is_answered_before_and_after_login() {
    let addr = common::start(Limits::default()).await.imap;
    let mut c = Client::connect(addr).await;
    answered(&mut c, "i1").await;
    assert!(tagged(&c.run("l", "LOGIN alice alice-pw").await).starts_with("l OK"));
    answered(&mut c, "i2").await;
}

/// A line whose first space falls at the end of the 80 bytes the reader looks at to spot an ID
/// (random input, as bad_input_heap sends) is refused like any long line, not waited on forever.
#[tokio::test]
async fn a_space_at_the_end_of_the_looked_at_head_does_not_stall_the_reader() {
    let addr = common::start(Limits::default()).await.imap;
    let mut c = Client::connect(addr).await;
    let mut line = vec![b'x'; 79];
    line.push(b' ');
    line.extend(vec![b'y'; 20_000]);
    line.extend_from_slice(b"\r\n");
    c.send(&line).await;
    let refused = tokio::time::timeout(std::time::Duration::from_secs(10), c.line())
        .await
        .expect("the server answers the long line");
    assert!(refused.contains("BAD"), "{refused}");
    let lines = c.run("n", "NOOP").await;
    assert!(tagged(&lines).starts_with("n OK"), "{lines:?}");
}
