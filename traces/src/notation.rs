//! Recursive-descent parser of the trace's notation: the `Debug` output of an older imap-types fork
//! (`Name { field: value }`, `Name(args)`, `[a, b]` and `[a, b]+`, strings, numbers, `None`/`Some(x)`,
//! dates such as `2024-02-14T14:12:35+01:00`, `REDACTED` and `/* REDACTED */`) into a generic tree.

/// A node of the notation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    /// A bare identifier: a unit variant, `true`, `false`, `None`.
    Ident(String),
    /// `Name(a, b)`: a tuple variant or tuple struct.
    Call(String, Vec<Node>),
    /// `Name { field: value, ... }`.
    Struct(String, Vec<(String, Node)>),
    /// `[a, b]`, or `[a, b]+` (a non-empty vector) when the flag is set.
    List(Vec<Node>, bool),
    /// `(a, b)`: a tuple.
    Tuple(Vec<Node>),
    /// A double-quoted string, unescaped.
    Str(String),
    /// An unsigned integer.
    Num(u64),
    /// A date (`2024-02-07`) or date-time (`2024-02-14T14:12:35+01:00`), verbatim.
    Date(String),
    /// `REDACTED` or `/* REDACTED */`: a value removed from the recording.
    Redacted,
}

/// Why a line of notation does not parse: the byte column and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub column: usize,
    pub expected: &'static str,
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn err<T>(&self, expected: &'static str) -> Result<T, SyntaxError> {
        Err(SyntaxError {
            column: self.pos + 1,
            expected,
        })
    }

    fn skip_ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.pos).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8, what: &'static str) -> Result<(), SyntaxError> {
        if self.eat(c) {
            Ok(())
        } else {
            self.err(what)
        }
    }

    fn ident(&mut self) -> Result<String, SyntaxError> {
        self.skip_ws();
        let start = self.pos;
        while self.pos < self.s.len()
            && (self.s[self.pos].is_ascii_alphanumeric() || self.s[self.pos] == b'_')
        {
            self.pos += 1;
        }
        if start == self.pos || self.s[start].is_ascii_digit() {
            self.pos = start;
            return self.err("an identifier");
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.pos]).into_owned())
    }

    /// Comma-separated values up to `close`, allowing a trailing comma.
    fn seq(&mut self, close: u8, what: &'static str) -> Result<Vec<Node>, SyntaxError> {
        let mut items = Vec::new();
        if self.eat(close) {
            return Ok(items);
        }
        loop {
            items.push(self.value()?);
            if self.eat(b',') {
                if self.eat(close) {
                    return Ok(items);
                }
                continue;
            }
            self.expect(close, what)?;
            return Ok(items);
        }
    }

    fn string(&mut self) -> Result<String, SyntaxError> {
        // The opening quote is already consumed.
        let mut out = String::new();
        loop {
            let rest = std::str::from_utf8(&self.s[self.pos..]).map_err(|_| SyntaxError {
                column: self.pos + 1,
                expected: "UTF-8 text",
            })?;
            let mut chars = rest.chars();
            let Some(c) = chars.next() else {
                return self.err("a closing quote");
            };
            self.pos += c.len_utf8();
            match c {
                '"' => return Ok(out),
                '\\' => {
                    let Some(e) = chars.next() else {
                        return self.err("an escape");
                    };
                    self.pos += e.len_utf8();
                    match e {
                        '"' => out.push('"'),
                        '\\' => out.push('\\'),
                        '\'' => out.push('\''),
                        'n' => out.push('\n'),
                        'r' => out.push('\r'),
                        't' => out.push('\t'),
                        '0' => out.push('\0'),
                        'u' => {
                            let tail: String = chars.take_while(|&c| c != '}').collect();
                            let hex = tail.strip_prefix('{').unwrap_or("");
                            let ch = u32::from_str_radix(hex, 16).ok().and_then(char::from_u32);
                            let Some(ch) = ch else {
                                return self.err("a \\u{...} escape");
                            };
                            self.pos += tail.len() + 1;
                            out.push(ch);
                        }
                        _ => return self.err("a known escape"),
                    }
                }
                c => out.push(c),
            }
        }
    }

    fn number_or_date(&mut self) -> Result<Node, SyntaxError> {
        let start = self.pos;
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_digit() {
            self.pos += 1;
        }
        if self.s.get(self.pos) == Some(&b'-') {
            while self.pos < self.s.len() && b"0123456789-T:+Z.".contains(&self.s[self.pos]) {
                self.pos += 1;
            }
            return Ok(Node::Date(
                String::from_utf8_lossy(&self.s[start..self.pos]).into_owned(),
            ));
        }
        let digits = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("");
        match digits.parse() {
            Ok(n) => Ok(Node::Num(n)),
            Err(_) => {
                self.pos = start;
                self.err("a number that fits 64 bits")
            }
        }
    }

    fn value(&mut self) -> Result<Node, SyntaxError> {
        match self.peek() {
            None => self.err("a value"),
            Some(b'"') => {
                self.pos += 1;
                Ok(Node::Str(self.string()?))
            }
            Some(b'[') => {
                self.pos += 1;
                let items = self.seq(b']', "`,` or `]`")?;
                // `+` right after `]` marks a non-empty vector.
                let plus = self.s.get(self.pos) == Some(&b'+');
                if plus {
                    self.pos += 1;
                }
                Ok(Node::List(items, plus))
            }
            Some(b'(') => {
                self.pos += 1;
                Ok(Node::Tuple(self.seq(b')', "`,` or `)`")?))
            }
            Some(b'/') => {
                const COMMENT: &[u8] = b"/* REDACTED */";
                if self.s[self.pos..].starts_with(COMMENT) {
                    self.pos += COMMENT.len();
                    Ok(Node::Redacted)
                } else {
                    self.err("`/* REDACTED */`")
                }
            }
            Some(c) if c.is_ascii_digit() => self.number_or_date(),
            Some(_) => {
                let name = self.ident()?;
                // `(` and `{` must follow the name directly to be its arguments.
                match self.s.get(self.pos) {
                    Some(b'(') => {
                        self.pos += 1;
                        Ok(Node::Call(name, self.seq(b')', "`,` or `)`")?))
                    }
                    Some(b' ') if self.s[self.pos..].starts_with(b" {") => {
                        self.pos += 2;
                        let mut fields = Vec::new();
                        if !self.eat(b'}') {
                            loop {
                                let f = self.ident()?;
                                self.expect(b':', "`:` after a field name")?;
                                fields.push((f, self.value()?));
                                if self.eat(b',') {
                                    if self.eat(b'}') {
                                        break;
                                    }
                                    continue;
                                }
                                self.expect(b'}', "`,` or `}`")?;
                                break;
                            }
                        }
                        Ok(Node::Struct(name, fields))
                    }
                    _ if name == "REDACTED" => Ok(Node::Redacted),
                    _ => Ok(Node::Ident(name)),
                }
            }
        }
    }
}

/// Parses one line of the trace: a command body, possibly followed by the `}` that closed the
/// enclosing `Command { .. }` in the recording.
pub(crate) fn parse_line(line: &str) -> Result<Node, SyntaxError> {
    let mut p = Parser {
        s: line.as_bytes(),
        pos: 0,
    };
    let node = p.value()?;
    p.eat(b'}');
    if p.peek().is_some() {
        return p.err("the end of the line");
    }
    Ok(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> String {
        x.to_owned()
    }

    #[test]
    fn parses_structs_calls_lists_and_dates() {
        let n = parse_line(
            r#"Append { mailbox: Other(MailboxOther(Atom(AtomExt("Sent")))), flags: [Seen]+, date: Some(2024-02-14T14:12:35+01:00), message: REDACTED } }"#,
        )
        .expect("parses");
        let Node::Struct(name, fields) = n else {
            panic!("a struct")
        };
        assert_eq!(name, "Append");
        assert_eq!(
            fields[1],
            (s("flags"), Node::List(vec![Node::Ident(s("Seen"))], true))
        );
        assert_eq!(
            fields[2].1,
            Node::Call(s("Some"), vec![Node::Date(s("2024-02-14T14:12:35+01:00"))])
        );
        assert_eq!(fields[3].1, Node::Redacted);
    }

    #[test]
    fn parses_tuples_escapes_and_comments() {
        assert_eq!(
            parse_line(r#"X { a: Some((0, 10240)), b: "q\"\\é", c: /* REDACTED */ }"#),
            Ok(Node::Struct(
                s("X"),
                vec![
                    (
                        s("a"),
                        Node::Call(
                            s("Some"),
                            vec![Node::Tuple(vec![Node::Num(0), Node::Num(10240)])]
                        )
                    ),
                    (s("b"), Node::Str(s("q\"\\é"))),
                    (s("c"), Node::Redacted),
                ]
            ))
        );
        assert_eq!(parse_line("Capability "), Ok(Node::Ident(s("Capability"))));
    }

    #[test]
    fn reports_the_column_of_a_syntax_error() {
        assert_eq!(
            parse_line("Fetch { a: [1, 2 }"),
            Err(SyntaxError {
                column: 18,
                expected: "`,` or `]`"
            })
        );
        assert!(parse_line("Noop extra").is_err());
    }
}
