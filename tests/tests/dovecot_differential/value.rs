//! Response tokens: an answer parsed into token trees, whitespace dropped, quoted strings and
//! literals alike.

/// Longest answer shown in a report line, in characters.
const SHOW_MAX: usize = 400;

/// One token tree of a response: whitespace is dropped, quoted strings and literals are both `Str`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Nil,
    Atom(String),
    Str(Vec<u8>),
    List(Vec<Value>),
}

impl Value {
    pub fn str(&self) -> Option<&[u8]> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    pub fn show(&self, out: &mut String) {
        match self {
            Value::Nil => out.push_str("NIL"),
            Value::Atom(a) => out.push_str(a),
            Value::Str(s) => {
                out.push('"');
                for c in String::from_utf8_lossy(s).chars() {
                    match c {
                        '"' | '\\' => {
                            out.push('\\');
                            out.push(c);
                        }
                        '\r' => out.push_str("\\r"),
                        '\n' => out.push_str("\\n"),
                        c => out.push(c),
                    }
                }
                out.push('"');
            }
            Value::List(l) => {
                out.push('(');
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    v.show(out);
                }
                out.push(')');
            }
        }
    }
}

pub fn show(v: Option<&Value>) -> String {
    let mut s = String::new();
    match v {
        Some(v) => v.show(&mut s),
        None => s.push_str("(absent)"),
    }
    if s.chars().count() > SHOW_MAX {
        let cut: String = s.chars().take(SHOW_MAX).collect();
        return format!("{cut}... ({} chars)", s.chars().count());
    }
    s
}

/// Tokenizes a whole response (literals inline, as read by [`Conn::response`]).
pub fn parse(s: &[u8]) -> Vec<Value> {
    /// Closes the innermost open list into the one around it.
    fn close(stack: &mut Vec<Vec<Value>>) {
        let done = stack.pop().expect("more than one level");
        stack
            .last_mut()
            .expect("an outer level")
            .push(Value::List(done));
    }
    let mut stack: Vec<Vec<Value>> = vec![Vec::new()];
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'(' => {
                stack.push(Vec::new());
                i += 1;
            }
            b')' => {
                if stack.len() > 1 {
                    close(&mut stack);
                }
                i += 1;
            }
            b'"' => {
                let mut v = Vec::new();
                i += 1;
                while i < s.len() && s[i] != b'"' {
                    if s[i] == b'\\' && i + 1 < s.len() {
                        i += 1;
                    }
                    v.push(s[i]);
                    i += 1;
                }
                i += 1;
                stack.last_mut().expect("a level").push(Value::Str(v));
            }
            b'{' if literal_at(s, i).is_some() => {
                let (start, n) = literal_at(s, i).expect("checked");
                let end = (start + n).min(s.len());
                stack
                    .last_mut()
                    .expect("a level")
                    .push(Value::Str(s[start..end].to_vec()));
                i = end;
            }
            _ => {
                let start = i;
                let mut depth = 0;
                while i < s.len() {
                    match s[i] {
                        b'[' => depth += 1,
                        b']' => depth -= 1,
                        b' ' | b'(' | b')' | b'\r' | b'\n' if depth == 0 => break,
                        _ => {}
                    }
                    i += 1;
                }
                let atom = String::from_utf8_lossy(&s[start..i]).into_owned();
                let v = if atom.eq_ignore_ascii_case("NIL") {
                    Value::Nil
                } else {
                    Value::Atom(atom)
                };
                stack.last_mut().expect("a level").push(v);
            }
        }
    }
    while stack.len() > 1 {
        close(&mut stack);
    }
    stack.pop().expect("the top level")
}

/// `{n}\r\n` or `{n+}\r\n` at `i`: where the literal's bytes start and how many there are.
pub fn literal_at(s: &[u8], i: usize) -> Option<(usize, usize)> {
    let close = i + s[i..].iter().take(24).position(|&b| b == b'}')?;
    let n: usize = std::str::from_utf8(&s[i + 1..close])
        .ok()?
        .trim_end_matches('+')
        .parse()
        .ok()?;
    s[close + 1..]
        .starts_with(b"\r\n")
        .then_some((close + 3, n))
}
