//! RFC 822 / MIME header-value tokenizer and the Content-* field parsers, following Dovecot's rules.
//!
//! The functions mirror Dovecot 2.3's `rfc822-parser.c` and `rfc2231-parser.c` so that the
//! values we keep are the ones Dovecot answers with: return codes are `-1` (broken), `0` (end of
//! input reached) and `1` (more input follows), and broken input is parsed as far as possible.

/// What a NUL byte inside a quoted string, comment or parameter becomes (U+FFFD in UTF-8).
pub(crate) const NUL_REPLACEMENT: &[u8] = "\u{FFFD}".as_bytes();

/// Dovecot's `rfc822_atext_chars`: 1 = atext, 2 = alpha/digit/8-bit, 4 = atext but a MIME tspecial.
const ATEXT: [u8; 256] = {
    let mut t = [2u8; 256];
    let mut i = 0;
    while i < 128 {
        t[i] = 0;
        i += 1;
    }
    let one = b"!#$%&'*+-=?^_`{|}~/";
    let mut j = 0;
    while j < one.len() {
        t[one[j] as usize] = 1;
        j += 1;
    }
    t[b'/' as usize] = 4;
    t[b'=' as usize] = 4;
    t[b'?' as usize] = 4;
    let mut c = b'0';
    while c <= b'9' {
        t[c as usize] = 2;
        c += 1;
    }
    c = b'A';
    while c <= b'Z' {
        t[c as usize] = 2;
        t[(c + 32) as usize] = 2;
        c += 1;
    }
    t
};

pub(crate) fn is_atext(c: u8) -> bool {
    ATEXT[c as usize] != 0
}

fn is_atext_non_tspecial(c: u8) -> bool {
    ATEXT[c as usize] & 3 != 0
}

/// ASCII case-insensitive equality.
pub(crate) fn eq_ic(a: &[u8], b: &[u8]) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// A cursor over one header value.
pub(crate) struct Parser<'a> {
    data: &'a [u8],
    pub(crate) pos: usize,
    /// When set, the text of the last comment skipped (as in Dovecot's `last_comment`).
    pub(crate) last_comment: Option<Vec<u8>>,
}

impl<'a> Parser<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Parser {
            data,
            pos: 0,
            last_comment: None,
        }
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// The current byte, or NUL at the end (C strings end with one).
    pub(crate) fn cur(&self) -> u8 {
        self.data.get(self.pos).copied().unwrap_or(0)
    }

    fn more(&self) -> i32 {
        if self.at_end() {
            0
        } else {
            1
        }
    }

    fn comment_append(&mut self, from: usize, to: usize) {
        if let Some(c) = self.last_comment.as_mut() {
            c.extend_from_slice(&self.data[from..to]);
        }
    }

    pub(crate) fn skip_comment(&mut self) -> i32 {
        if let Some(c) = self.last_comment.as_mut() {
            c.clear();
        }
        let mut level = 1;
        self.pos += 1;
        let mut start = self.pos;
        while self.pos < self.data.len() {
            match self.data[self.pos] {
                0 if self.last_comment.is_some() => {
                    self.comment_append(start, self.pos);
                    if let Some(c) = self.last_comment.as_mut() {
                        c.extend_from_slice(NUL_REPLACEMENT);
                    }
                    start = self.pos + 1;
                }
                b'(' => level += 1,
                b')' => {
                    level -= 1;
                    if level == 0 {
                        self.comment_append(start, self.pos);
                        self.pos += 1;
                        return self.more();
                    }
                }
                b'\n' if self.last_comment.is_some() => {
                    self.comment_append(start, self.before_line_break(start));
                    start = self.pos + 1;
                }
                b'\\' => {
                    self.pos += 1;
                    if self.pos >= self.data.len() {
                        return -1;
                    }
                    if matches!(self.data[self.pos], b'\r' | b'\n' | 0) {
                        self.pos -= 1;
                    } else {
                        self.comment_append(start, self.pos - 1);
                        start = self.pos;
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
        -1
    }

    pub(crate) fn skip_lwsp(&mut self) -> i32 {
        while self.pos < self.data.len() {
            let c = self.data[self.pos];
            if matches!(c, b' ' | b'\t' | b'\r' | b'\n') {
                self.pos += 1;
                continue;
            }
            if c != b'(' {
                break;
            }
            if self.skip_comment() < 0 {
                return -1;
            }
        }
        self.more()
    }

    pub(crate) fn parse_atom(&mut self, out: &mut Vec<u8>) -> i32 {
        if self.at_end() || !is_atext(self.cur()) {
            return -1;
        }
        let start = self.pos;
        self.pos += 1;
        while self.pos < self.data.len() {
            if is_atext(self.data[self.pos]) {
                self.pos += 1;
                continue;
            }
            out.extend_from_slice(&self.data[start..self.pos]);
            return self.skip_lwsp();
        }
        out.extend_from_slice(&self.data[start..self.pos]);
        0
    }

    fn parse_dot_atom(&mut self, out: &mut Vec<u8>) -> i32 {
        if self.at_end() || !is_atext(self.cur()) {
            return -1;
        }
        let mut start = self.pos;
        self.pos += 1;
        while self.pos < self.data.len() {
            if is_atext(self.data[self.pos]) {
                self.pos += 1;
                continue;
            }
            if start == self.pos {
                return -1;
            }
            out.extend_from_slice(&self.data[start..self.pos]);
            let ret = self.skip_lwsp();
            if ret <= 0 {
                return ret;
            }
            if self.cur() != b'.' {
                return 1;
            }
            self.pos += 1;
            out.push(b'.');
            if self.skip_lwsp() <= 0 {
                return -1;
            }
            start = self.pos;
        }
        out.extend_from_slice(&self.data[start..self.pos]);
        0
    }

    pub(crate) fn parse_mime_token(&mut self, out: &mut Vec<u8>) -> i32 {
        self.parse_run(out, |c| is_atext_non_tspecial(c) || c == b'.')
    }

    /// Copies the run of bytes `accept` takes, then skips white space after it (0 at the end).
    fn parse_run(&mut self, out: &mut Vec<u8>, accept: impl Fn(u8) -> bool) -> i32 {
        let start = self.pos;
        while self.pos < self.data.len() && accept(self.data[self.pos]) {
            self.pos += 1;
        }
        out.extend_from_slice(&self.data[start..self.pos]);
        if self.pos < self.data.len() {
            self.skip_lwsp()
        } else {
            0
        }
    }

    /// Copies `data[start..pos]` and the NUL's replacement; the cursor is on the NUL.
    fn copy_with_nul_replaced(&self, out: &mut Vec<u8>, start: usize) {
        out.extend_from_slice(&self.data[start..self.pos]);
        out.extend_from_slice(NUL_REPLACEMENT);
    }

    /// Copies `data[start..pos]` without the CR of a CRLF; the cursor is on the LF (unfolding).
    fn copy_before_line_break(&self, out: &mut Vec<u8>, start: usize) {
        out.extend_from_slice(&self.data[start..self.before_line_break(start)]);
    }

    /// Where the text from `start` to the LF at the cursor ends: before the CR of a CRLF.
    fn before_line_break(&self, start: usize) -> usize {
        if self.pos > start && self.data[self.pos - 1] == b'\r' {
            self.pos - 1
        } else {
            self.pos
        }
    }

    /// Parses a quoted string; the cursor is on its opening quote.
    pub(crate) fn parse_quoted_string(&mut self, out: &mut Vec<u8>) -> i32 {
        self.parse_delimited(out, b'"', false)
    }

    /// Parses a domain literal, brackets kept; the cursor is on its `[`.
    fn parse_domain_literal(&mut self, out: &mut Vec<u8>) -> i32 {
        self.parse_delimited(out, b']', true)
    }

    /// A quoted string (`literal` false) or a domain literal (`literal` true, which keeps its
    /// brackets and backslashes and refuses a nested `[`), read up to `close`, as Dovecot's
    /// rfc822-parser reads them: a NUL becomes U+FFFD, line breaks unfold, and a backslash before
    /// a line break or NUL escapes nothing.
    fn parse_delimited(&mut self, out: &mut Vec<u8>, close: u8, literal: bool) -> i32 {
        let mut start = if literal { self.pos } else { self.pos + 1 };
        self.pos += 1;
        while self.pos < self.data.len() {
            match self.data[self.pos] {
                0 => {
                    self.copy_with_nul_replaced(out, start);
                    start = self.pos + 1;
                }
                c if c == close => {
                    let end = if literal { self.pos + 1 } else { self.pos };
                    out.extend_from_slice(&self.data[start..end]);
                    self.pos += 1;
                    return self.skip_lwsp();
                }
                b'[' if literal => return -1,
                b'\n' => {
                    self.copy_before_line_break(out, start);
                    start = self.pos + 1;
                }
                b'\\' => {
                    self.pos += 1;
                    if self.pos >= self.data.len() {
                        return -1;
                    }
                    if matches!(self.data[self.pos], b'\r' | b'\n' | 0) {
                        if literal {
                            out.extend_from_slice(&self.data[start..self.pos]);
                            start = self.pos;
                        }
                        self.pos -= 1;
                    } else if !literal {
                        out.extend_from_slice(&self.data[start..self.pos - 1]);
                        start = self.pos;
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
        -1
    }

    fn parse_atom_or_dot(&mut self, out: &mut Vec<u8>) -> i32 {
        self.parse_run(out, |c| is_atext(c) || c == b'.')
    }

    pub(crate) fn parse_phrase(&mut self, out: &mut Vec<u8>) -> i32 {
        if self.at_end() {
            return 0;
        }
        if self.cur() == b'.' {
            return -1;
        }
        loop {
            let ret = if self.cur() == b'"' {
                self.parse_quoted_string(out)
            } else {
                self.parse_atom_or_dot(out)
            };
            if ret <= 0 {
                return ret;
            }
            let c = self.cur();
            if !is_atext(c) && c != b'"' && c != b'.' {
                break;
            }
            out.push(b' ');
        }
        self.skip_lwsp()
    }

    /// Parses `@domain`; the cursor is on the `@`.
    pub(crate) fn parse_domain(&mut self, out: &mut Vec<u8>) -> i32 {
        self.pos += 1;
        if self.skip_lwsp() <= 0 {
            return -1;
        }
        if self.cur() == b'[' {
            self.parse_domain_literal(out)
        } else {
            self.parse_dot_atom(out)
        }
    }

    /// `type/subtype` into `out`; on error `out` may keep only what Dovecot keeps.
    fn parse_content_type(&mut self, out: &mut Vec<u8>) -> i32 {
        let pos0 = out.len();
        if self.skip_lwsp() <= 0 {
            return -1;
        }
        if self.parse_mime_token(out) <= 0 || out.len() == pos0 {
            return -1;
        }
        if self.cur() != b'/' {
            out.truncate(pos0);
            return -1;
        }
        self.pos += 1;
        if self.skip_lwsp() <= 0 {
            out.truncate(pos0);
            return -1;
        }
        out.push(b'/');
        let sub = out.len();
        let ret = self.parse_mime_token(out);
        if ret < 0 || out.len() == sub || (!self.at_end() && self.cur() != b';') {
            out.truncate(pos0);
            return -1;
        }
        ret
    }

    fn parse_content_param(&mut self, key: &mut Vec<u8>, value: &mut Vec<u8>) -> i32 {
        key.clear();
        value.clear();
        if self.at_end() {
            return 0;
        }
        if self.cur() != b';' {
            return -1;
        }
        self.pos += 1;
        if self.skip_lwsp() <= 0 {
            return -1;
        }
        if self.parse_mime_token(key) <= 0 {
            return -1;
        }
        if self.cur() != b'=' {
            return -1;
        }
        self.pos += 1;
        let mut ret = self.skip_lwsp();
        if ret <= 0 {
            // broken or no value
        } else if self.cur() == b'"' {
            ret = self.parse_quoted_string(value);
        } else if self.cur() == b'=' {
            // Dovecot's workaround for `name==?utf-8?b?...?=`
            while !self.at_end() && !matches!(self.cur(), b';' | b' ' | b'\t' | b'\r' | b'\n') {
                value.push(self.cur());
                self.pos += 1;
            }
        } else {
            ret = self.parse_mime_token(value);
        }
        if ret < 0 {
            -1
        } else {
            1
        }
    }
}

/// A parameter list: (attribute, value) pairs in Dovecot's order.
pub(crate) type Params = Vec<(Vec<u8>, Vec<u8>)>;

struct Rfc2231Param {
    key: Vec<u8>,
    value: Vec<u8>,
    idx: u32,
    extended: bool,
}

/// Parses `*(";" attribute "=" value)`, merging RFC 2231 continuations (`name*0*=`) the way
/// Dovecot does: values stay encoded (`charset'lang'%xx`), the merged key gets a trailing `*`.
pub(crate) fn rfc2231_parse(p: &mut Parser<'_>) -> Params {
    let mut result: Params = Vec::new();
    let mut ext: Vec<Rfc2231Param> = Vec::new();
    let (mut key, mut value) = (Vec::new(), Vec::new());
    // Dovecot reuses one struct, so an index without digits keeps the previous one.
    let mut idx: u32 = 0;
    loop {
        let ret = p.parse_content_param(&mut key, &mut value);
        if ret == 0 {
            break;
        }
        if ret < 0 {
            if p.at_end() {
                break;
            }
            p.pos += 1;
            continue;
        }
        let Some(star) = key.iter().position(|&b| b == b'*') else {
            result.push((key.clone(), value.clone()));
            continue;
        };
        let mut q = star;
        if q + 1 < key.len() {
            q += 1;
            idx = 0;
            while q < key.len() && key[q].is_ascii_digit() {
                idx = idx.wrapping_mul(10).wrapping_add(u32::from(key[q] - b'0'));
                q += 1;
            }
        }
        let extended = q < key.len() && key[q] == b'*';
        if extended {
            q += 1;
        }
        if q < key.len() {
            result.push((key.clone(), value.clone()));
        } else {
            ext.push(Rfc2231Param {
                key: key[..star].to_vec(),
                value: value.clone(),
                idx,
                extended,
            });
        }
    }
    if ext.is_empty() {
        return result;
    }
    ext.sort_by(|a, b| a.key.cmp(&b.key).then(a.idx.cmp(&b.idx)));
    let mut i = 0;
    while i < ext.len() {
        let mut ok = true;
        let mut have_extended = false;
        let mut next_idx = 0u32;
        let mut j = i;
        while j < ext.len() {
            if !eq_ic(&ext[i].key, &ext[j].key) {
                break;
            }
            if ext[j].idx != next_idx {
                ok = false;
            }
            have_extended |= ext[j].extended;
            next_idx = next_idx.wrapping_add(1);
            j += 1;
        }
        let next = j;
        if !ok {
            for e in &ext[i..next] {
                let mut k = e.key.clone();
                k.push(b'*');
                k.extend_from_slice(e.idx.to_string().as_bytes());
                if e.extended {
                    k.push(b'*');
                }
                result.push((k, e.value.clone()));
            }
        } else {
            let mut v = Vec::new();
            if !ext[i].extended && have_extended {
                v.extend_from_slice(b"''");
            }
            for e in &ext[i..next] {
                if !e.extended && have_extended {
                    for &b in &e.value {
                        if b == b'%' {
                            v.extend_from_slice(b"%25");
                        } else {
                            v.push(b);
                        }
                    }
                } else {
                    v.extend_from_slice(&e.value);
                }
            }
            let mut k = ext[i].key.clone();
            if have_extended {
                k.push(b'*');
            }
            result.push((k, v));
        }
        i = next;
    }
    result
}

/// A parsed `Content-Type` value.
pub(crate) struct ContentType {
    /// `type/subtype` as Dovecot's parser leaves it (possibly empty or without a subtype).
    pub full: Vec<u8>,
    /// Parameters; empty when the type itself was broken.
    pub params: Params,
    /// Whether the type parsed cleanly (parameters were read).
    pub ok: bool,
}

pub(crate) fn parse_content_type(value: &[u8]) -> ContentType {
    let mut p = Parser::new(value);
    p.skip_lwsp();
    let mut full = Vec::new();
    let ret = p.parse_content_type(&mut full);
    if ret < 0 {
        return ContentType {
            full,
            params: Vec::new(),
            ok: false,
        };
    }
    let params = rfc2231_parse(&mut p);
    ContentType {
        full,
        params,
        ok: true,
    }
}

/// `Content-Transfer-Encoding`: one token and nothing else, or nothing.
pub(crate) fn parse_encoding(value: &[u8]) -> Option<Vec<u8>> {
    let mut p = Parser::new(value);
    p.skip_lwsp();
    let mut s = Vec::new();
    if p.parse_mime_token(&mut s) >= 0 && p.skip_lwsp() == 0 && !s.is_empty() {
        Some(s)
    } else {
        None
    }
}

/// `Content-Disposition`: the token (possibly empty) and its parameters.
pub(crate) fn parse_disposition(value: &[u8]) -> Option<(Vec<u8>, Params)> {
    let mut p = Parser::new(value);
    p.skip_lwsp();
    let mut s = Vec::new();
    if p.parse_mime_token(&mut s) < 0 {
        return None;
    }
    let params = rfc2231_parse(&mut p);
    Some((s, params))
}

/// `Content-Language`: a comma-separated list of atoms.
pub(crate) fn parse_language(value: &[u8]) -> Vec<Vec<u8>> {
    let mut p = Parser::new(value);
    let mut langs = Vec::new();
    p.skip_lwsp();
    loop {
        let mut s = Vec::new();
        if p.parse_atom(&mut s) < 0 {
            break;
        }
        langs.push(s);
        if p.at_end() || p.cur() != b',' {
            break;
        }
        p.pos += 1;
        p.skip_lwsp();
    }
    langs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_with_quoted_and_token_params() {
        let ct = parse_content_type(b" text/plain; charset=\"us-ascii\"; format=flowed");
        assert_eq!(ct.full, b"text/plain");
        assert_eq!(
            ct.params,
            vec![
                (b"charset".to_vec(), b"us-ascii".to_vec()),
                (b"format".to_vec(), b"flowed".to_vec())
            ]
        );
    }

    #[test]
    fn content_type_without_subtype_is_broken() {
        let ct = parse_content_type(b"text; charset=x");
        assert!(!ct.ok);
        assert!(ct.params.is_empty());
    }

    /// Asserts that Content-Type `value` has exactly the parameters `expected`, in order.
    fn assert_params(value: &[u8], expected: &[(&[u8], &[u8])]) {
        let expected: Vec<(Vec<u8>, Vec<u8>)> = expected
            .iter()
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect();
        assert_eq!(parse_content_type(value).params, expected);
    }

    #[test]
    fn rfc2231_continuations_are_merged_in_index_order() {
        assert_params(
            b"image/gif; name*1=\"about \"; name*0=\"Book \";\n name*2=\"coffe tables.gif\"",
            &[(b"name", b"Book about coffe tables.gif")],
        );
    }

    #[test]
    fn rfc2231_charset_form_stays_encoded_with_star_key() {
        assert_params(
            b"text/plain; title*0*=us-ascii'en'This%20is; title*1=\" 100%\"",
            &[(b"title*", b"us-ascii'en'This%20is 100%25")],
        );
    }

    #[test]
    fn garbage_between_params_is_skipped_until_next_semicolon() {
        let ct =
            parse_content_type(b"multipart/mixed; boundary=1; comment=\"\"\n  comment=\"x;y\"");
        assert_eq!(ct.params[0], (b"boundary".to_vec(), b"1".to_vec()));
        assert_eq!(ct.params[1], (b"comment".to_vec(), b"".to_vec()));
    }

    #[test]
    fn encoding_with_trailing_garbage_is_ignored() {
        assert_eq!(parse_encoding(b"base64"), Some(b"base64".to_vec()));
        assert_eq!(parse_encoding(b"quoted-printable x"), None);
        assert_eq!(parse_encoding(b"8bit (comment)"), Some(b"8bit".to_vec()));
    }

    #[test]
    fn language_list_is_split_on_commas() {
        assert_eq!(
            parse_language(b" en-US, fr"),
            vec![b"en-US".to_vec(), b"fr".to_vec()]
        );
    }
}
