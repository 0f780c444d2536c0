//! Failed logins are limited per user and per source address.

use std::net::Ipv4Addr;

use crate::common;
use crate::harness::Status;
use crate::raw::{limits, End, Raw};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_are_limited_per_user_whatever_the_source_address() {
    let started =
        common::start_with(limits(), None, &[("alice", "alice-pw"), ("bob", "bob-pw")]).await;
    let addr = started.imap;
    for i in 0..server::auth::FAILURES_MAX {
        let from = Ipv4Addr::new(127, 0, 1, 1 + i as u8);
        let mut c = Raw::connect_from(addr, from).await;
        assert_eq!(c.run("f", "LOGIN alice wrong").await, End::Done(Status::No));
    }
    // A fresh address, the right password: alice is limited.
    let mut c = Raw::connect_from(addr, Ipv4Addr::new(127, 0, 1, 100)).await;
    assert_eq!(
        c.run("g", "LOGIN alice alice-pw").await,
        End::Done(Status::No)
    );
    // Another user from that address is not.
    assert_eq!(c.run("h", "LOGIN bob bob-pw").await, End::Done(Status::Ok));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_are_limited_per_source_address_whatever_the_user() {
    let started =
        common::start_with(limits(), None, &[("alice", "alice-pw"), ("bob", "bob-pw")]).await;
    let addr = started.imap;
    let guesser = Ipv4Addr::new(127, 0, 2, 1);
    let mut c = Raw::connect_from(addr, guesser).await;
    for i in 0..server::auth::FAILURES_MAX {
        let command = format!("LOGIN user{i} wrong");
        assert_eq!(c.run("f", &command).await, End::Done(Status::No));
    }
    // From that address even a right password is refused, over a new connection too.
    assert_eq!(c.run("g", "LOGIN bob bob-pw").await, End::Done(Status::No));
    let mut again = Raw::connect_from(addr, guesser).await;
    assert_eq!(
        again.run("g", "LOGIN bob bob-pw").await,
        End::Done(Status::No)
    );
    // From another address bob and alice log in: the guesses were not theirs.
    for user in ["bob bob-pw", "alice alice-pw"] {
        let mut other = Raw::connect_from(addr, Ipv4Addr::new(127, 0, 2, 2)).await;
        let end = other.run("h", &format!("LOGIN {user}")).await;
        assert_eq!(end, End::Done(Status::Ok), "{user}");
    }
}
