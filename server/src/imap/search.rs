//! SEARCH and UID SEARCH: every message is judged on its own, from the index first, then from its
//! metadata record (header keys) and its body streamed chunk by chunk (BODY/TEXT), so memory does
//! not grow with the mailbox or the message. Body search matches raw bytes, case-insensitively for
//! ASCII; decoding transfer encodings and charsets before matching is not done yet.

use chrono::NaiveDate;
use imap_types::search::SearchKey;
use tokio::io::{AsyncRead, AsyncWrite};

use super::fetch::contains;
use super::session::Session;
use crate::mail::index::{flag, Entry};
use crate::mail::{MailError, UserStore};

/// What evaluating the criteria needs beyond the index.
#[derive(Default)]
struct Needs {
    header: bool,
    needles: Vec<Vec<u8>>,
}

fn needs(key: &SearchKey<'_>, n: &mut Needs) {
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().for_each(|k| needs(k, n)),
        SearchKey::Or(a, b) => {
            needs(a, n);
            needs(b, n);
        }
        SearchKey::Not(k) => needs(k, n),
        SearchKey::Bcc(_)
        | SearchKey::Cc(_)
        | SearchKey::From(_)
        | SearchKey::To(_)
        | SearchKey::Subject(_)
        | SearchKey::Header(..)
        | SearchKey::SentBefore(_)
        | SearchKey::SentOn(_)
        | SearchKey::SentSince(_) => n.header = true,
        SearchKey::Body(s) => n.needles.push(s.as_ref().to_ascii_lowercase()),
        SearchKey::Text(s) => {
            n.header = true;
            n.needles.push(s.as_ref().to_ascii_lowercase());
        }
        _ => {}
    }
}

fn has_modseq(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::ModSequence { .. } => true,
        SearchKey::And(keys) => keys.as_ref().iter().any(has_modseq),
        SearchKey::Or(a, b) => has_modseq(a) || has_modseq(b),
        SearchKey::Not(k) => has_modseq(k),
        _ => false,
    }
}

/// One message as the criteria see it.
struct Subject<'a> {
    seq: u32,
    exists: u32,
    largest_uid: u32,
    entry: &'a Entry,
    keywords: &'a [String],
    header: &'a [u8],
    /// For each needle of [`Needs::needles`], whether the body holds it.
    found: &'a [bool],
    needles: &'a [Vec<u8>],
}

fn lower_contains(haystack: &[u8], needle_lower: &[u8]) -> bool {
    needle_lower.is_empty()
        || haystack.windows(needle_lower.len()).any(|w| {
            w.iter()
                .zip(needle_lower)
                .all(|(a, b)| a.to_ascii_lowercase() == *b)
        })
}

/// The unfolded values of header field `name` (case-insensitive).
fn header_values<'h>(header: &'h [u8], name: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    for line in header.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            if let Some(c) = current.as_mut() {
                c.extend_from_slice(line);
            }
            continue;
        }
        if let Some(c) = current.take() {
            out.push(c);
        }
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            if line[..colon].trim_ascii().eq_ignore_ascii_case(name) {
                current = Some(line[colon + 1..].trim_ascii().to_vec());
            }
        }
    }
    out.extend(current);
    out
}

fn sent_date(header: &[u8]) -> Option<NaiveDate> {
    let value = header_values(header, b"Date").into_iter().next()?;
    let text = String::from_utf8_lossy(&value).into_owned();
    let text = text.trim();
    // A wrong day of the week ("Mon, 13 Aug 1998" was a Thursday) is common: like Dovecot, ignore it.
    let without_day = text.split_once(',').map_or(text, |(_, rest)| rest.trim());
    chrono::DateTime::parse_from_rfc2822(text)
        .or_else(|_| chrono::DateTime::parse_from_rfc2822(without_day))
        .ok()
        .map(|d| d.date_naive())
}

/// The sent date; a missing or unreadable Date counts as 1 January 1970, as Dovecot takes it.
fn sent_or_epoch(header: &[u8]) -> NaiveDate {
    sent_date(header).unwrap_or(NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date"))
}

fn keyword_bit(keywords: &[String], name: &str) -> u32 {
    match crate::mail::index::system_flag(name) {
        Some(bit) => bit,
        None => keywords
            .iter()
            .position(|k| k.eq_ignore_ascii_case(name))
            .map(|i| 1 << (flag::KEYWORD_SHIFT as usize + i))
            .unwrap_or(0),
    }
}

fn eval(key: &SearchKey<'_>, s: &Subject<'_>) -> bool {
    let f = s.entry.flags;
    let internal =
        chrono::DateTime::from_timestamp(s.entry.internal_date, 0).map(|d| d.date_naive());
    let header_has = |field: &[u8], value: &[u8]| {
        let needle = value.to_ascii_lowercase();
        header_values(s.header, field)
            .iter()
            .any(|v| lower_contains(v, &needle))
    };
    let body_has = |value: &[u8]| {
        let needle = value.to_ascii_lowercase();
        s.needles
            .iter()
            .zip(s.found)
            .any(|(n, found)| *n == needle && *found)
    };
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().all(|k| eval(k, s)),
        SearchKey::Or(a, b) => eval(a, s) || eval(b, s),
        SearchKey::Not(k) => !eval(k, s),
        SearchKey::SequenceSet(set) => contains(set, s.seq, s.exists),
        SearchKey::Uid(set) => contains(set, s.entry.uid, s.largest_uid),
        SearchKey::All => true,
        SearchKey::ModSequence { modseq, .. } => s.entry.modseq >= *modseq,
        SearchKey::Answered => f & flag::ANSWERED != 0,
        SearchKey::Unanswered => f & flag::ANSWERED == 0,
        SearchKey::Deleted => f & flag::DELETED != 0,
        SearchKey::Undeleted => f & flag::DELETED == 0,
        SearchKey::Draft => f & flag::DRAFT != 0,
        SearchKey::Undraft => f & flag::DRAFT == 0,
        SearchKey::Flagged => f & flag::FLAGGED != 0,
        SearchKey::Unflagged => f & flag::FLAGGED == 0,
        SearchKey::Seen => f & flag::SEEN != 0,
        SearchKey::Unseen => f & flag::SEEN == 0,
        // No message is ever \Recent: this server does not keep per-session recency.
        SearchKey::Recent | SearchKey::New => false,
        SearchKey::Old => true,
        SearchKey::Keyword(k) => {
            let bit = keyword_bit(s.keywords, k.inner());
            bit != 0 && f & bit != 0
        }
        SearchKey::Unkeyword(k) => {
            let bit = keyword_bit(s.keywords, k.inner());
            bit == 0 || f & bit == 0
        }
        SearchKey::Larger(n) => s.entry.size > *n,
        SearchKey::Smaller(n) => s.entry.size < *n,
        SearchKey::Before(d) => internal.is_some_and(|i| i < *d.as_ref()),
        SearchKey::On(d) => internal.is_some_and(|i| i == *d.as_ref()),
        SearchKey::Since(d) => internal.is_some_and(|i| i >= *d.as_ref()),
        SearchKey::SentBefore(d) => sent_or_epoch(s.header) < *d.as_ref(),
        SearchKey::SentOn(d) => sent_or_epoch(s.header) == *d.as_ref(),
        SearchKey::SentSince(d) => sent_or_epoch(s.header) >= *d.as_ref(),
        SearchKey::From(v) => header_has(b"From", v.as_ref()),
        SearchKey::To(v) => header_has(b"To", v.as_ref()),
        SearchKey::Cc(v) => header_has(b"Cc", v.as_ref()),
        SearchKey::Bcc(v) => header_has(b"Bcc", v.as_ref()),
        SearchKey::Subject(v) => header_has(b"Subject", v.as_ref()),
        SearchKey::Header(field, v) => {
            let values = header_values(s.header, field.as_ref());
            let needle = v.as_ref().to_ascii_lowercase();
            values.iter().any(|h| lower_contains(h, &needle))
        }
        SearchKey::Body(v) => body_has(v.as_ref()),
        SearchKey::Text(v) => {
            body_has(v.as_ref()) || lower_contains(s.header, &v.as_ref().to_ascii_lowercase())
        }
    }
}

/// Streams a body and reports which needles it holds; keeps only a needle-sized tail between chunks.
async fn scan_body(
    user: &UserStore,
    entry: &Entry,
    needles: &[Vec<u8>],
) -> Result<Vec<bool>, MailError> {
    let mut found = vec![false; needles.len()];
    let record = user.record(&entry.message).await?;
    let keep = needles
        .iter()
        .map(Vec::len)
        .max()
        .unwrap_or(1)
        .saturating_sub(1);
    let mut window: Vec<u8> = Vec::new();
    // BODY looks in the body only (RFC 3501), not in the message's header.
    for (i, from, to) in
        super::fetch::chunk_span(&record, record.meta.root.body_start, record.body.size)
    {
        let chunk = user.body_chunk(&entry.message, &record.body, i).await?;
        window.extend_from_slice(&chunk[from..to.min(chunk.len())]);
        drop(chunk);
        for (n, f) in needles.iter().zip(found.iter_mut()) {
            *f = *f || lower_contains(&window, n);
        }
        if found.iter().all(|f| *f) {
            break;
        }
        let cut = window.len().saturating_sub(keep);
        window.drain(..cut);
    }
    Ok(found)
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Session<R, W> {
    pub(super) async fn search(&mut self, tag: &str, criteria: &[SearchKey<'_>], uid: bool) {
        let user = self.user.clone().expect("search runs only when selected");
        let mut n = Needs::default();
        criteria.iter().for_each(|k| needs(k, &mut n));
        let (exists, largest_uid) = {
            let index = &self
                .selected
                .as_ref()
                .expect("search runs only when selected")
                .index;
            (
                index.exists(),
                index.entries.last().map(|e| e.uid).unwrap_or(0),
            )
        };
        let mut line = b"* SEARCH".to_vec();
        let wants_modseq = criteria.iter().any(has_modseq);
        let mut max_modseq = 0u64;
        for seq in 1..=exists {
            let entry = self
                .selected
                .as_ref()
                .expect("still selected")
                .index
                .entries[seq as usize - 1];
            let header = if n.header {
                match user.record(&entry.message).await {
                    Ok(record) => record.meta.header,
                    Err(e) => return self.storage_failure(tag, &e),
                }
            } else {
                Vec::new()
            };
            let found = if n.needles.is_empty() {
                Vec::new()
            } else {
                match scan_body(&user, &entry, &n.needles).await {
                    Ok(found) => found,
                    Err(e) => return self.storage_failure(tag, &e),
                }
            };
            let index = &self.selected.as_ref().expect("still selected").index;
            let subject = Subject {
                seq,
                exists,
                largest_uid,
                entry: &entry,
                keywords: &index.keywords,
                header: &header,
                found: &found,
                needles: &n.needles,
            };
            if criteria.iter().all(|k| eval(k, &subject)) {
                line.extend_from_slice(
                    format!(" {}", if uid { entry.uid } else { seq }).as_bytes(),
                );
                max_modseq = max_modseq.max(entry.modseq);
            }
        }
        if wants_modseq && max_modseq > 0 {
            line.extend_from_slice(format!(" (MODSEQ {max_modseq})").as_bytes());
        }
        line.extend_from_slice(b"\r\n");
        self.out.line(&line);
        self.tagged(tag, "OK", "SEARCH completed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_unfold_and_ignore_case() {
        let h = b"Subject: hello\r\n world\r\nFROM: a@b.c\r\n\r\n";
        assert_eq!(header_values(h, b"subject"), vec![b"hello world".to_vec()]);
        assert_eq!(header_values(h, b"From"), vec![b"a@b.c".to_vec()]);
        assert!(header_values(h, b"To").is_empty());
    }

    #[test]
    fn sent_dates_with_a_wrong_weekday_still_parse() {
        let d = sent_date(b"Date: Mon, 13 Aug 1998 17:42:41 +1000\r\n\r\n").expect("parses");
        assert_eq!(d.to_string(), "1998-08-13");
    }

    #[test]
    fn matching_is_case_insensitive() {
        assert!(lower_contains(b"Hello World", b"world"));
        assert!(!lower_contains(b"Hello", b"worlds"));
    }
}
