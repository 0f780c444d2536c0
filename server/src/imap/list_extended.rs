//! LIST with selection or RETURN options (RFC 5258, 5819, 6154). imap-codec 2.0.0-alpha.10 does not
//! decode these forms (see FACTS.md), so this small parser reads them when imap-codec refuses a LIST.

use imap_types::status::StatusDataItemName;

use super::mailboxes::ListOptions;

/// A decoded extended LIST.
#[derive(Debug)]
pub struct ListExtended {
    /// Command tag.
    pub tag: String,
    /// Reference name.
    pub reference: String,
    /// Mailbox patterns (one or more).
    pub patterns: Vec<String>,
    /// Selection and return options.
    pub options: ListOptions,
}

#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Open,
    Close,
}

fn tokens(mut input: &[u8]) -> Option<Vec<Token>> {
    let mut out = Vec::new();
    while let Some(&b) = input.first() {
        match b {
            b' ' | b'\r' | b'\n' => input = &input[1..],
            b'(' => {
                out.push(Token::Open);
                input = &input[1..];
            }
            b')' => {
                out.push(Token::Close);
                input = &input[1..];
            }
            b'"' => {
                let mut s = Vec::new();
                let mut i = 1;
                loop {
                    match *input.get(i)? {
                        b'\\' => {
                            s.push(*input.get(i + 1)?);
                            i += 2;
                        }
                        b'"' => break,
                        c => {
                            s.push(c);
                            i += 1;
                        }
                    }
                }
                out.push(Token::Str(String::from_utf8(s).ok()?));
                input = &input[i + 1..];
            }
            b'{' => {
                let close = input.iter().position(|&c| c == b'}')?;
                let digits = std::str::from_utf8(&input[1..close])
                    .ok()?
                    .trim_end_matches('+');
                let n: usize = digits.parse().ok()?;
                let start = close + 1 + input[close + 1..].iter().position(|&c| c == b'\n')? + 1;
                out.push(Token::Str(
                    String::from_utf8(input.get(start..start + n)?.to_vec()).ok()?,
                ));
                input = &input[start + n..];
            }
            _ => {
                let end = input
                    .iter()
                    .position(|&c| c == b' ' || c == b'(' || c == b')' || c == b'\r')
                    .unwrap_or(input.len());
                out.push(Token::Word(String::from_utf8(input[..end].to_vec()).ok()?));
                input = &input[end..];
            }
        }
    }
    Some(out)
}

fn status_item(word: &str) -> Option<StatusDataItemName> {
    Some(match word.to_ascii_uppercase().as_str() {
        "MESSAGES" => StatusDataItemName::Messages,
        "RECENT" => StatusDataItemName::Recent,
        "UIDNEXT" => StatusDataItemName::UidNext,
        "UIDVALIDITY" => StatusDataItemName::UidValidity,
        "UNSEEN" => StatusDataItemName::Unseen,
        "DELETED" => StatusDataItemName::Deleted,
        "HIGHESTMODSEQ" => StatusDataItemName::HighestModSeq,
        _ => return None,
    })
}

/// Parses `tag LIST [(sel)] ref pattern(s) [RETURN (opts)]`; `None` if it is not one.
pub fn parse(message: &[u8]) -> Option<ListExtended> {
    let toks = tokens(message)?;
    let mut it = toks.into_iter().peekable();
    let Some(Token::Word(tag)) = it.next() else {
        return None;
    };
    match it.next()? {
        Token::Word(w) if w.eq_ignore_ascii_case("LIST") => {}
        _ => return None,
    }
    let mut options = ListOptions::default();
    if it.peek() == Some(&Token::Open) {
        it.next();
        loop {
            match it.next()? {
                Token::Close => break,
                Token::Word(w) => match w.to_ascii_uppercase().as_str() {
                    "SUBSCRIBED" => {
                        // Implies the SUBSCRIBED return option (RFC 5258 3.1).
                        options.subscribed_only = true;
                        options.return_subscribed = true;
                    }
                    "SPECIAL-USE" => options.special_use_only = true,
                    "RECURSIVEMATCH" => options.recursive_match = true,
                    "REMOTE" => {}
                    _ => return None,
                },
                Token::Str(_) | Token::Open => return None,
            }
        }
    }
    let reference = match it.next()? {
        Token::Word(w) | Token::Str(w) => w,
        _ => return None,
    };
    let mut patterns = Vec::new();
    match it.next()? {
        Token::Word(w) | Token::Str(w) => patterns.push(w),
        Token::Open => loop {
            match it.next()? {
                Token::Close => break,
                Token::Word(w) | Token::Str(w) => patterns.push(w),
                Token::Open => return None,
            }
        },
        Token::Close => return None,
    }
    if let Some(tok) = it.next() {
        match tok {
            Token::Word(w) if w.eq_ignore_ascii_case("RETURN") => {}
            _ => return None,
        }
        if it.next()? != Token::Open {
            return None;
        }
        loop {
            match it.next()? {
                Token::Close => break,
                Token::Word(w) => match w.to_ascii_uppercase().as_str() {
                    "SUBSCRIBED" => options.return_subscribed = true,
                    "CHILDREN" | "SPECIAL-USE" => {}
                    "STATUS" => {
                        if it.next()? != Token::Open {
                            return None;
                        }
                        loop {
                            match it.next()? {
                                Token::Close => break,
                                Token::Word(item) => options.status.push(status_item(&item)?),
                                _ => return None,
                            }
                        }
                    }
                    _ => return None,
                },
                _ => return None,
            }
        }
    }
    // RECURSIVEMATCH needs a selection option beside it (REMOTE aside): RFC 5258 3.1 says BAD.
    let selects = options.subscribed_only || options.special_use_only;
    if it.next().is_some() || patterns.is_empty() || (options.recursive_match && !selects) {
        return None;
    }
    Some(ListExtended {
        tag,
        reference,
        patterns,
        options,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_traces_list_status_form() {
        let l = parse(b"A150 LIST \"\" \"*\" RETURN (STATUS (UNSEEN))\r\n").expect("parses");
        assert_eq!(l.tag, "A150");
        assert_eq!(l.reference, "");
        assert_eq!(l.patterns, ["*"]);
        assert_eq!(l.options.status, [StatusDataItemName::Unseen]);
    }

    #[test]
    fn reads_selection_options_and_pattern_lists() {
        let l =
            parse(b"a LIST (SUBSCRIBED) \"\" (INBOX \"Sent\") RETURN (CHILDREN SPECIAL-USE)\r\n")
                .expect("parses");
        assert!(l.options.subscribed_only);
        assert_eq!(l.patterns, ["INBOX", "Sent"]);
    }

    #[test]
    fn refuses_other_commands_and_junk() {
        assert!(parse(b"a NOOP\r\n").is_none());
        assert!(parse(b"a LIST \"\" \"*\" RETURN (BOGUS)\r\n").is_none());
        assert!(parse(b"a LIST \"\" \"*\" RETURN (STATUS (UNSEEN)\r\n").is_none());
        assert!(parse(b"a LIST \"unterminated\r\n").is_none());
        assert!(parse(b"a LIST (RECURSIVEMATCH) \"\" \"\"\r\n").is_none());
        assert!(parse(b"a LIST (REMOTE RECURSIVEMATCH) \"\" %\r\n").is_none());
        let l = parse(b"a LIST (RECURSIVEMATCH SUBSCRIBED) \"\" %\r\n").expect("parses");
        assert!(l.options.recursive_match && l.options.return_subscribed);
    }
}
