//! The named exceptions, and the comparison of one item: equal, excepted or wrong, tallied by kind.

use std::collections::BTreeMap;

use crate::emails::Email;
use crate::imap_client::Reply;
use crate::value::Value;

/// Whether a difference is by design or a gap of our server that is to be fixed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// We answer differently on purpose; the reason says why.
    Deliberate,
    /// Our server is wrong here and it is known; remove the exception once fixed.
    Gap,
}

pub struct Exception {
    pub name: &'static str,
    pub kind: Kind,
    pub reason: &'static str,
}

pub const MEDIA_TYPE_CASE: Exception = Exception {
    name: "media-type-case",
    kind: Kind::Deliberate,
    reason: "imap-codec writes the media type of text and message/rfc822 parts as \"TEXT\", \
             \"MESSAGE\" \"RFC822\" in upper case where Dovecot keeps the header's case; media types \
             are case-insensitive (RFC 2045 5.1).",
};
pub const CRCRLF: Exception = Exception {
    name: "cr-cr-lf-storage",
    kind: Kind::Deliberate,
    reason: "the email has lines ending in CR CR LF. Dovecot stores mail with LF line ends, which turns \
             each CR CR LF into CR LF, so it answers for other bytes than were delivered; we store and \
             describe the bytes as delivered (see server/tests/data/emails/DOVECOT-2.3.19.md).",
};
pub const EXCEPTIONS: &[&Exception] = &[&MEDIA_TYPE_CASE, &CRCRLF];

/// The outcome of comparing one item.
pub enum Verdict {
    Equal,
    Excepted(&'static Exception),
    Wrong,
}

/// One difference, as reported.
pub struct Difference {
    pub email: String,
    pub item: String,
    pub ours: String,
    pub theirs: String,
}

impl Difference {
    /// The two servers' tagged answers to `item` differ.
    pub fn tagged(email: &str, item: &str, ours: &Reply, theirs: &Reply) -> Difference {
        Difference {
            email: email.to_string(),
            item: item.to_string(),
            ours: ours.tagged.clone(),
            theirs: theirs.tagged.clone(),
        }
    }
}

#[derive(Default)]
pub struct Tally {
    pub equal: usize,
    /// Per kind of item (part numbers as `n`, partial origins as `<p>`): equal, excepted, wrong.
    pub by_kind: BTreeMap<String, [usize; 3]>,
    pub excepted: BTreeMap<&'static str, Vec<Difference>>,
    pub wrong: Vec<Difference>,
}

impl Tally {
    /// Counts one compared item; `d` describes it (built for every item, as the table counts by kind).
    pub fn record(&mut self, verdict: Verdict, d: impl FnOnce() -> Difference) {
        let d = d();
        let counts = self.by_kind.entry(kind_of(&d.item)).or_default();
        match verdict {
            Verdict::Equal => {
                counts[0] += 1;
                self.equal += 1;
            }
            Verdict::Excepted(e) => {
                counts[1] += 1;
                self.excepted.entry(e.name).or_default().push(d);
            }
            Verdict::Wrong => {
                counts[2] += 1;
                self.wrong.push(d);
            }
        }
    }

    pub fn count(&self, kind: Kind) -> usize {
        EXCEPTIONS
            .iter()
            .filter(|e| e.kind == kind)
            .map(|e| self.excepted.get(e.name).map_or(0, Vec::len))
            .sum()
    }
}

/// An item name with its numbers replaced, for counting by kind: `BODY[n.MIME]`, `BODY[n]<p>`.
pub fn kind_of(item: &str) -> String {
    if let Some(rest) = item.strip_prefix("SEARCH ") {
        return format!("SEARCH {}", rest.split(' ').next().unwrap_or(""));
    }
    if !item.contains('[') {
        return item.to_string();
    }
    let mut out = String::new();
    let mut in_number = false;
    for c in item.chars() {
        if c.is_ascii_digit() || (in_number && c == '.') {
            if !in_number {
                out.push('n');
            }
            in_number = true;
        } else {
            if in_number && c != ']' && c != '>' && !out.ends_with('.') {
                out.push('.');
            }
            in_number = false;
            out.push(c);
        }
    }
    out.replace("]<n>", "]<p>")
}

/// Equal token trees, with the media-type case tolerance of [`MEDIA_TYPE_CASE`] when `media` is set.
pub fn same(ours: &Value, theirs: &Value, media: bool) -> bool {
    match (ours, theirs) {
        (Value::List(a), Value::List(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y, media))
        }
        (Value::Str(a), Value::Str(b))
            if media && [&b"TEXT"[..], b"MESSAGE", b"RFC822"].contains(&a.as_slice()) =>
        {
            a.eq_ignore_ascii_case(b)
        }
        (a, b) => a == b,
    }
}

/// What a message looks like, as far as the exceptions need to know.
pub struct Traits {
    pub crcrlf: bool,
}

pub fn traits(email: &Email) -> Traits {
    Traits {
        crcrlf: email.bytes.windows(3).any(|w| w == b"\r\r\n"),
    }
}

/// Judges one FETCH item.
pub fn judge_fetch(
    item: &str,
    ours: Option<&Value>,
    theirs: Option<&Value>,
    t: &Traits,
) -> Verdict {
    let media = item == "BODYSTRUCTURE" || item == "BODY";
    match (ours, theirs) {
        (Some(a), Some(b)) if a == b => return Verdict::Equal,
        (Some(a), Some(b)) if same(a, b, media) => return Verdict::Excepted(&MEDIA_TYPE_CASE),
        _ => {}
    }
    if t.crcrlf {
        return Verdict::Excepted(&CRCRLF);
    }
    Verdict::Wrong
}

/// Judges one message's membership in one SEARCH where the two servers disagree.
pub fn judge_search(t: &Traits) -> Verdict {
    if t.crcrlf {
        return Verdict::Excepted(&CRCRLF);
    }
    Verdict::Wrong
}
