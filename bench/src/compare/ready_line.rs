//! The ready line of `imapsim serve` (`imapsim ready: IMAP on A, LMTP on B, store ..., users
//! ...`): written by the server once it listens, read by whoever launched it. Both sides live
//! here so that they cannot drift apart.

/// The ready line of a server listening for IMAP on `imap` and LMTP on `lmtp`, with its store
/// (`store`, as `imapsim serve` describes it) and its users.
pub fn ready_line(imap: &str, lmtp: &str, store: &str, users: &[&str]) -> String {
    format!(
        "imapsim ready: IMAP on {imap}, LMTP on {lmtp}, store {store}, users {}",
        users.join(", ")
    )
}

/// The IMAP and LMTP addresses of a ready line ([`ready_line`]), if `line` is one.
pub fn ready_addresses(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix("imapsim ready: IMAP on ")?;
    let (imap, rest) = rest.split_once(", LMTP on ")?;
    let (lmtp, _) = rest.split_once(", ")?;
    Some((imap.to_string(), lmtp.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ready_line_gives_back_both_addresses() {
        let line = ready_line("127.0.0.1:40001", "127.0.0.1:40002", "fakes3", &["alice"]);
        assert_eq!(
            line,
            "imapsim ready: IMAP on 127.0.0.1:40001, LMTP on 127.0.0.1:40002, store fakes3, users alice"
        );
        assert_eq!(
            ready_addresses(&line),
            Some(("127.0.0.1:40001".into(), "127.0.0.1:40002".into()))
        );
    }
}
