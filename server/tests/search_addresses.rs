//! SEARCH FROM/TO/CC/BCC match the address list as Dovecot does: written back from its parsed
//! form, so comments and folding inside an address do not hide it, and a comment alone does not
//! match.

mod common;

use std::collections::BTreeSet;

use common::{tagged, Client};
use server::config::Limits;

async fn append(c: &mut Client, message: &str) {
    c.send(format!("ap APPEND INBOX {{{}+}}\r\n{message}\r\n", message.len()).as_bytes())
        .await;
    let lines = c.until("ap").await;
    assert!(tagged(&lines).starts_with("ap OK"), "{lines:?}");
}

async fn search(c: &mut Client, criteria: &str) -> BTreeSet<u32> {
    let lines = c.run("s", &format!("SEARCH {criteria}")).await;
    assert!(tagged(&lines).starts_with("s OK"), "{lines:?}");
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("* SEARCH"))
        .flat_map(|r| r.split_whitespace().filter_map(|n| n.parse().ok()))
        .collect()
}

#[tokio::test]
async fn address_keys_match_addresses_with_comments_and_folding_removed() {
    let addr = common::start(Limits::default()).await.imap;
    let mut c = Client::connect(addr).await;
    assert!(tagged(&c.run("l", "LOGIN alice alice-pw").await).starts_with("l OK"));
    append(
        &mut c,
        "From: <user-from (comment)@ (comment) domain.org>\r\n\
         To: Someone <user-to@\r\n (folded) domain.org>\r\n\
         Subject: x\r\n\r\nbody\r\n",
    )
    .await;
    append(
        &mut c,
        "From: other@domain.org\r\nSubject: y\r\n\r\nbody\r\n",
    )
    .await;
    assert!(tagged(&c.run("e", "SELECT INBOX").await).starts_with("e OK"));
    let one = BTreeSet::from([1]);
    assert_eq!(search(&mut c, "FROM user-from@domain.org").await, one);
    assert_eq!(search(&mut c, "FROM USER-FROM@DOMAIN").await, one);
    assert_eq!(search(&mut c, "TO user-to@domain.org").await, one);
    assert_eq!(search(&mut c, "TO \"someone <user-to@\"").await, one);
    assert_eq!(
        search(&mut c, "FROM domain.org").await,
        BTreeSet::from([1, 2])
    );
    // Comments are not part of the address.
    assert!(search(&mut c, "FROM comment").await.is_empty());
    assert!(search(&mut c, "TO folded").await.is_empty());
}
