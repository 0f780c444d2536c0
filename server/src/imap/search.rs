//! SEARCH and UID SEARCH: every message is judged on its own, from the index first, then from its
//! metadata record (header keys) and its stored body streamed chunk by chunk (BODY/TEXT), so memory
//! does not grow with the mailbox or the message.
//!
//! Matching is Dovecot's: case-insensitive (Unicode), header values with their RFC 2047 encoded
//! words decoded, and BODY/TEXT on the decoded text of the text parts (transfer encoding and charset
//! undone, see [`crate::mime::text`]); TEXT also looks at every header of every part.

use chrono::NaiveDate;
use imap_types::search::SearchKey;
use tokio::io::{AsyncRead, AsyncWrite};

use super::fetch::contains;
use super::state::Session;
use crate::mail::index::{flag, Entry, Index};
use crate::mail::{MailError, MessageRecord, UserStore};
use crate::mime::decode::decode_header_value;
use crate::mime::text::{contains_folded, segments, Segment, TextSearch};
use crate::mime::write_address_list;

/// What evaluating the criteria needs beyond the index.
#[derive(Default)]
struct Needs {
    header: bool,
    /// Strings of BODY keys.
    body: Vec<String>,
    /// Strings of TEXT keys.
    text: Vec<String>,
}

/// A search key's string as text (a non-UTF-8 byte becomes U+FFFD).
fn key_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
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
        SearchKey::Body(s) => n.body.push(key_text(s.as_ref())),
        SearchKey::Text(s) => n.text.push(key_text(s.as_ref())),
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
    /// Whether the message is \Recent in this session.
    recent: bool,
    /// The mailbox's index, for keywords.
    index: &'a Index,
    header: &'a [u8],
    needs: &'a Needs,
    /// For each string of [`Needs::body`], whether the decoded body holds it.
    found_body: &'a [bool],
    /// For each string of [`Needs::text`], whether the decoded text holds it.
    found_text: &'a [bool],
}

/// The unfolded values of header field `name` (case-insensitive), as Dovecot's header parser
/// gives them: line breaks removed, a TAB that opens a continuation line turned into a space.
fn header_values(header: &[u8], name: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    for line in header.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            if let Some(c) = current.as_mut() {
                c.push(b' ');
                c.extend_from_slice(&line[1..]);
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

/// Runs of spaces and TABs as one space, leading ones dropped (Dovecot's SUBJECT matching).
fn compress_lwsp(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut after_lwsp = true;
    for &b in value {
        if b == b' ' || b == b'\t' {
            if !after_lwsp {
                out.push(b' ');
            }
            after_lwsp = true;
        } else {
            out.push(b);
            after_lwsp = false;
        }
    }
    out
}

/// Whether a value of header field `name` holds `needle`: encoded words decoded, case ignored.
fn header_has(header: &[u8], name: &[u8], needle: &[u8], compress: bool) -> bool {
    let needle = key_text(needle);
    header_values(header, name).iter().any(|raw| {
        let mut value = String::new();
        if compress {
            decode_header_value(&compress_lwsp(raw), &mut value);
        } else {
            decode_header_value(raw, &mut value);
        }
        contains_folded(&value, &needle)
    })
}

/// Addresses kept when an address header is written back for matching.
const ADDRESSES_MAX: usize = 1000;

/// Whether an address header holds `needle`, matched as Dovecot does: against the address list
/// written back without comments and folding, encoded words decoded, case ignored.
fn address_has(header: &[u8], name: &[u8], needle: &[u8]) -> bool {
    let needle = key_text(needle);
    header_values(header, name).iter().any(|raw| {
        let mut value = String::new();
        decode_header_value(&write_address_list(raw, ADDRESSES_MAX), &mut value);
        contains_folded(&value, &needle)
    })
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

fn eval(key: &SearchKey<'_>, s: &Subject<'_>) -> bool {
    let f = s.entry.flags;
    let internal =
        chrono::DateTime::from_timestamp(s.entry.internal_date, 0).map(|d| d.date_naive());
    let header_has = |field: &[u8], value: &[u8]| header_has(s.header, field, value, false);
    let has = |strings: &[String], found: &[bool], value: &[u8]| {
        let value = key_text(value);
        strings
            .iter()
            .zip(found)
            .any(|(n, found)| *n == value && *found)
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
        SearchKey::Recent => s.recent,
        SearchKey::New => s.recent && f & flag::SEEN == 0,
        SearchKey::Old => !s.recent,
        SearchKey::Keyword(k) => s.index.has_flag(s.entry, k.inner()),
        SearchKey::Unkeyword(k) => !s.index.has_flag(s.entry, k.inner()),
        SearchKey::Larger(n) => s.entry.size > *n,
        SearchKey::Smaller(n) => s.entry.size < *n,
        SearchKey::Before(d) => internal.is_some_and(|i| i < *d.as_ref()),
        SearchKey::On(d) => internal.is_some_and(|i| i == *d.as_ref()),
        SearchKey::Since(d) => internal.is_some_and(|i| i >= *d.as_ref()),
        SearchKey::SentBefore(d) => sent_or_epoch(s.header) < *d.as_ref(),
        SearchKey::SentOn(d) => sent_or_epoch(s.header) == *d.as_ref(),
        SearchKey::SentSince(d) => sent_or_epoch(s.header) >= *d.as_ref(),
        SearchKey::From(v) => address_has(s.header, b"From", v.as_ref()),
        SearchKey::To(v) => address_has(s.header, b"To", v.as_ref()),
        SearchKey::Cc(v) => address_has(s.header, b"Cc", v.as_ref()),
        SearchKey::Bcc(v) => address_has(s.header, b"Bcc", v.as_ref()),
        SearchKey::Subject(v) => self::header_has(s.header, b"Subject", v.as_ref(), true),
        SearchKey::Header(field, v) => header_has(field.as_ref(), v.as_ref()),
        SearchKey::Body(v) => has(&s.needs.body, s.found_body, v.as_ref()),
        SearchKey::Text(v) => has(&s.needs.text, s.found_text, v.as_ref()),
    }
}

/// Streams the parts of a stored message that BODY and TEXT look at and reports, for each string
/// of `needs.body` and `needs.text`, whether it is there. One chunk is held at a time, and a chunk
/// that no searched part covers (an attachment, say) is never read.
async fn scan_text(
    user: &UserStore,
    entry: &Entry,
    record: &MessageRecord,
    needs: &Needs,
) -> Result<(Vec<bool>, Vec<bool>), MailError> {
    let meta = &record.meta;
    let mut search = TextSearch::new(&needs.body, &needs.text);
    let mut chunk: Option<(u32, Vec<u8>)> = None;
    for segment in segments(meta) {
        let (start, end, header) = match segment {
            Segment::Header { start, end, root } => {
                search.begin_part();
                if root && meta.header_complete {
                    search.header(&meta.header);
                    search.end_header();
                    continue;
                }
                (start, end, true)
            }
            Segment::Body { start, end } => {
                if !search.wants_body() {
                    continue;
                }
                (start, end, false)
            }
        };
        for (i, from, to) in super::fetch::chunk_span(record, start, end) {
            if chunk.as_ref().map(|(n, _)| *n) != Some(i) {
                drop(chunk.take()); // the previous chunk goes before the next is read
                chunk = Some((i, user.body_chunk(&entry.message, &record.body, i).await?));
            }
            let data = &chunk.as_ref().expect("read just above").1;
            let to = to.min(data.len());
            let bytes = &data[from.min(to)..to];
            if header {
                search.header(bytes);
            } else {
                search.body(bytes);
                if !search.wants_body() {
                    break;
                }
            }
        }
        if header {
            search.end_header();
        }
        if search.done() {
            break;
        }
    }
    Ok(search.found())
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
            let entry = self.entry_at(seq);
            if entry.flags & flag::EXPUNGED != 0 {
                continue; // expunged elsewhere, not yet announced: it matches nothing
            }
            let texts = !n.body.is_empty() || !n.text.is_empty();
            let record = if n.header || texts {
                match user.record(&entry.message).await {
                    Ok(record) => Some(record),
                    Err(e) => return self.storage_failure(tag, &e),
                }
            } else {
                None
            };
            let (found_body, found_text) = match &record {
                Some(record) if texts => match scan_text(&user, &entry, record, &n).await {
                    Ok(found) => found,
                    Err(e) => return self.storage_failure(tag, &e),
                },
                _ => (Vec::new(), Vec::new()),
            };
            let header = record.as_ref().map_or(&[][..], |r| &r.meta.header[..]);
            let selected = self.selected.as_ref().expect("still selected");
            let subject = Subject {
                seq,
                exists,
                largest_uid,
                entry: &entry,
                recent: selected.recent.contains(entry.uid),
                index: &selected.index,
                header,
                needs: &n,
                found_body: &found_body,
                found_text: &found_text,
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
    fn header_matching_decodes_encoded_words_and_ignores_case() {
        let h = b"Subject: =?UTF-8?B?R3LDvMOfZQ==?=\r\n\t aus =?ISO-8859-1?Q?Z=FCrich?=\r\n\r\n";
        assert!(header_has(
            h,
            b"subject",
            "grüße aus zürich".as_bytes(),
            true
        ));
        assert!(header_has(h, b"Subject", "ZÜRICH".as_bytes(), false));
        assert!(!header_has(h, b"Subject", b"=?UTF-8", false));
        assert!(header_has(h, b"Subject", b"", false));
        assert!(!header_has(h, b"From", b"", false));
    }
}
