//! Address-list parsing for the ENVELOPE (From, To, ...), following Dovecot's `message-address.c`.
//!
//! Display names, quoted local parts, comments used as names, source routes and group syntax are
//! handled as Dovecot does, including its fill-ins for broken input (`MISSING_DOMAIN`,
//! `MISSING_MAILBOX`, `SYNTAX_ERROR`, `INVALID_ROUTE`). Encoded words stay raw, as Dovecot keeps them.

use super::header::Parser;
use super::meta::Address;

struct Ctx<'a> {
    p: Parser<'a>,
    out: Vec<Address>,
    addr: Address,
    invalid: bool,
    s: Vec<u8>,
    /// Addresses kept at most (a bound on memory for absurd headers).
    max: usize,
}

/// Parses an address-list header value; at most `max` addresses are kept.
pub(crate) fn parse_address_list(value: &[u8], max: usize) -> Vec<Address> {
    let mut p = Parser::new(value);
    p.last_comment = Some(Vec::new());
    let mut ctx = Ctx {
        p,
        out: Vec::new(),
        addr: Address::default(),
        invalid: false,
        s: Vec::new(),
        max,
    };
    if ctx.p.skip_lwsp() > 0 {
        ctx.address_list();
    }
    ctx.out
}

/// An address-list header value as Dovecot's `message_address_write` gives it back, which is what
/// its SEARCH FROM/TO/CC/BCC match: comments and folding gone, `name <mailbox@domain>` or
/// `mailbox@domain`, groups as `group: ...;`. At most `max` addresses.
pub(crate) fn write_address_list(value: &[u8], max: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut in_group = false;
    let mut first = true;
    for a in parse_address_list(value, max) {
        match (&a.mailbox, &a.domain) {
            (Some(group), None) if !in_group => {
                if !first {
                    out.extend_from_slice(b", ");
                }
                out.extend_from_slice(group);
                out.extend_from_slice(b": ");
                (in_group, first) = (true, true);
                continue;
            }
            (None, None) if in_group => {
                out.push(b';');
                (in_group, first) = (false, false);
                continue;
            }
            _ => {}
        }
        if !first {
            out.extend_from_slice(b", ");
        }
        first = false;
        let spec = |out: &mut Vec<u8>| {
            if let Some(route) = &a.route {
                out.extend_from_slice(route);
                out.push(b':');
            }
            out.extend_from_slice(a.mailbox.as_deref().unwrap_or_default());
            if let Some(domain) = &a.domain {
                out.push(b'@');
                out.extend_from_slice(domain);
            }
        };
        match &a.name {
            Some(name) => {
                out.extend_from_slice(name);
                out.extend_from_slice(b" <");
                spec(&mut out);
                out.push(b'>');
            }
            None => spec(&mut out),
        }
    }
    out
}

impl Ctx<'_> {
    fn add_address(&mut self) {
        let a = std::mem::take(&mut self.addr);
        self.invalid = false;
        if self.out.len() < self.max {
            self.out.push(a);
        }
    }

    fn nonstrict_dot_atom(&mut self) -> i32 {
        let mut ret = -1;
        loop {
            while self.p.cur() == b'.' {
                self.s.push(b'.');
                self.p.pos += 1;
                if self.p.at_end() {
                    return 0;
                }
                ret = 1;
            }
            if self.p.cur() == b'@' {
                break;
            }
            ret = self.p.parse_atom(&mut self.s);
            if !(ret > 0 && self.p.cur() == b'.') {
                break;
            }
        }
        ret
    }

    fn local_part(&mut self) -> i32 {
        self.s.clear();
        let ret = if self.p.cur() == b'"' {
            self.p.parse_quoted_string(&mut self.s)
        } else {
            self.nonstrict_dot_atom()
        };
        if ret < 0 {
            return -1;
        }
        self.addr.mailbox = Some(self.s.clone());
        ret
    }

    fn domain(&mut self) -> i32 {
        self.s.clear();
        let ret = self.p.parse_domain(&mut self.s);
        if ret < 0 {
            return -1;
        }
        self.addr.domain = Some(self.s.clone());
        ret
    }

    fn domain_list(&mut self) -> i32 {
        self.s.clear();
        loop {
            if self.p.at_end() {
                return 0;
            }
            if self.p.cur() != b'@' {
                break;
            }
            if !self.s.is_empty() {
                self.s.push(b',');
            }
            self.s.push(b'@');
            let ret = self.p.parse_domain(&mut self.s);
            if ret <= 0 {
                return ret;
            }
            while self.p.skip_lwsp() > 0 && self.p.cur() == b',' {
                self.p.pos += 1;
            }
        }
        self.addr.route = Some(self.s.clone());
        1
    }

    fn angle_addr(&mut self) -> i32 {
        self.p.pos += 1;
        if self.p.skip_lwsp() <= 0 {
            return -1;
        }
        if self.p.cur() == b'@' {
            if self.domain_list() > 0 && self.p.cur() == b':' {
                self.p.pos += 1;
            } else {
                self.addr.route = Some(b"INVALID_ROUTE".to_vec());
                if self.p.at_end() {
                    return -1;
                }
            }
            if self.p.skip_lwsp() <= 0 {
                return -1;
            }
        }
        if self.p.cur() != b'>' {
            if self.local_part() <= 0 {
                return -1;
            }
            if self.p.cur() == b'@' && self.domain() <= 0 {
                return -1;
            }
        }
        if self.p.cur() != b'>' {
            return -1;
        }
        self.p.pos += 1;
        self.p.skip_lwsp()
    }

    fn name_addr(&mut self) -> i32 {
        self.s.clear();
        let ret = self.p.parse_phrase(&mut self.s);
        if ret <= 0 || self.p.cur() != b'<' {
            return -1;
        }
        self.addr.name = if self.s.is_empty() {
            None
        } else {
            Some(self.s.clone())
        };
        if self.angle_addr() < 0 {
            self.addr.domain = Some(b"SYNTAX_ERROR".to_vec());
            self.invalid = true;
        }
        if self.p.at_end() {
            0
        } else {
            1
        }
    }

    fn addr_spec(&mut self) -> i32 {
        let mut ret2 = -2;
        if let Some(c) = self.p.last_comment.as_mut() {
            c.clear();
        }
        let quoted = self.p.cur() == b'"';
        let mut ret = self.local_part();
        if ret <= 0 {
            self.invalid = true;
        }
        if ret != 0 && !self.p.at_end() && self.p.cur() == b'@' {
            ret2 = self.domain();
            if ret2 <= 0 {
                ret = ret2;
            }
        }
        let comment = self.p.last_comment.clone().unwrap_or_default();
        if !comment.is_empty() {
            self.addr.name = Some(comment);
        } else if ret2 == -2 {
            self.s.push(b' ');
            let orig = self.s.len();
            let _ = self.p.parse_phrase(&mut self.s);
            if self.s.len() != orig {
                self.addr.mailbox = None;
                self.addr.name = Some(self.s.clone());
            } else if !quoted {
                self.addr.domain = Some(Vec::new());
            }
            self.invalid = true;
            ret = -1;
        }
        ret
    }

    fn add_fixed_address(&mut self) {
        if self.addr.mailbox.is_none() {
            self.addr.mailbox = Some(b"MISSING_MAILBOX".to_vec());
        }
        if self.addr.domain.as_ref().is_none_or(|d| d.is_empty()) {
            self.addr.domain = Some(b"MISSING_DOMAIN".to_vec());
        }
        self.add_address();
    }

    fn mailbox(&mut self) -> i32 {
        let start = self.p.pos;
        let mut ret = self.name_addr();
        if ret < 0 {
            self.p.pos = start;
            ret = self.addr_spec();
            if self.invalid
                && self.addr.name.is_none()
                && self.addr.mailbox.is_some()
                && self.addr.domain.is_none()
            {
                self.addr.name = self.addr.mailbox.take();
            }
        }
        self.add_fixed_address();
        ret
    }

    fn group(&mut self) -> i32 {
        self.s.clear();
        let r = self.p.parse_phrase(&mut self.s);
        if r <= 0 || self.p.cur() != b':' {
            return -1;
        }
        self.p.pos += 1;
        let mut ret = self.p.skip_lwsp();
        self.addr.mailbox = Some(self.s.clone());
        self.add_address();
        if ret > 0 && self.p.cur() != b';' {
            loop {
                self.mailbox();
                if self.p.at_end() || self.p.cur() != b',' {
                    break;
                }
                self.p.pos += 1;
                if self.p.skip_lwsp() <= 0 {
                    ret = -1;
                    break;
                }
            }
        }
        if ret >= 0 {
            if self.p.at_end() || self.p.cur() != b';' {
                ret = -1;
            } else {
                self.p.pos += 1;
                ret = self.p.skip_lwsp();
            }
        }
        self.add_address();
        if ret == 0 {
            0
        } else {
            1
        }
    }

    fn address(&mut self) -> i32 {
        let start = self.p.pos;
        let ret = self.group();
        if ret < 0 {
            self.p.pos = start;
            self.addr = Address::default();
            return self.mailbox();
        }
        ret
    }

    fn address_list(&mut self) {
        loop {
            if self.address() == 0 {
                break;
            }
            if self.p.at_end() || self.p.cur() != b',' {
                break;
            }
            self.p.pos += 1;
            let ret = self.p.skip_lwsp();
            if ret <= 0 {
                if ret < 0 {
                    self.add_fixed_address();
                }
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(name: Option<&str>, mailbox: Option<&str>, domain: Option<&str>) -> Address {
        Address {
            name: name.map(|s| s.as_bytes().to_vec()),
            route: None,
            mailbox: mailbox.map(|s| s.as_bytes().to_vec()),
            domain: domain.map(|s| s.as_bytes().to_vec()),
        }
    }

    #[test]
    fn written_back_without_comments_or_folding() {
        let got = write_address_list(
            b"<user-from (comment)@ (comment)\r\n domain.org>, \"A B\" <a@b.c>, g: x@y;",
            100,
        );
        assert_eq!(
            String::from_utf8_lossy(&got),
            "user-from@domain.org, A B <a@b.c>, g: x@y;"
        );
    }

    #[test]
    fn display_name_and_trailing_comment() {
        let got = parse_address_list(
            b"Art Vandelay <art@vandelay.com> (Vandelay Industries)",
            100,
        );
        assert_eq!(
            got,
            vec![a(Some("Art Vandelay"), Some("art"), Some("vandelay.com"))]
        );
    }

    #[test]
    fn comment_becomes_name_of_bare_addr_spec() {
        let got = parse_address_list(b"nsb@bellcore.com (Nathaniel Borenstein)", 100);
        assert_eq!(
            got,
            vec![a(
                Some("Nathaniel Borenstein"),
                Some("nsb"),
                Some("bellcore.com")
            )]
        );
    }

    #[test]
    fn group_is_framed_by_start_and_end_markers() {
        let got = parse_address_list(
            b"\"Colleagues\": \"James Smythe\" <james@vandelay.com>; Friends: x@y",
            100,
        );
        assert_eq!(
            got,
            vec![
                a(None, Some("Colleagues"), None),
                a(Some("James Smythe"), Some("james"), Some("vandelay.com")),
                a(None, None, None)
            ]
        );
    }

    #[test]
    fn bare_word_gets_missing_domain() {
        let got = parse_address_list(b"Whomever", 100);
        assert_eq!(got, vec![a(None, Some("Whomever"), Some("MISSING_DOMAIN"))]);
    }

    #[test]
    fn encoded_words_stay_raw() {
        let got = parse_address_list(b"=?UTF-8?Q?John_Sm=C3=AEth?= <john@example.com>", 100);
        assert_eq!(
            got,
            vec![a(
                Some("=?UTF-8?Q?John_Sm=C3=AEth?="),
                Some("john"),
                Some("example.com")
            )]
        );
    }
}
