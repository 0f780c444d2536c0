//! FETCH and UID FETCH: one message at a time, each response written as it is produced. Flags,
//! sizes and dates come from the index; ENVELOPE, BODYSTRUCTURE and headers from the message's
//! metadata record; body sections stream from storage, reading only the chunks their byte range
//! covers, so memory does not grow with mailbox or message size.

use std::num::NonZeroU32;

use imap_codec::encode::Encoder;
use imap_codec::ResponseCodec;
use imap_types::core::{AString, Vec1};
use imap_types::fetch::{
    MacroOrMessageDataItemNames, MessageDataItem, MessageDataItemName, Part, Section,
};
use imap_types::response::{Data, Response};
use imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};
use tokio::io::{AsyncRead, AsyncWrite};

use super::state::Session;
use crate::mail::index::{flag, Entry, Index, Op};
use crate::mail::{MailError, MessageRecord, UserStore};
use crate::mime::{Kind, MessageMeta, HEADER_BLOCK_MAX};

/// One body item asked for.
#[derive(Clone)]
struct BodyItem {
    /// Label in the response (`BODY[HEADER]`, `RFC822`, ...), without the partial origin.
    label: String,
    section: Option<Section<'static>>,
    partial: Option<(u32, NonZeroU32)>,
    /// Whether fetching it sets \Seen.
    sets_seen: bool,
}

/// The items of one FETCH, resolved from the request.
#[derive(Default)]
struct Items {
    uid: bool,
    flags: bool,
    size: bool,
    internal_date: bool,
    modseq: bool,
    envelope: bool,
    bodystructure: bool,
    body: bool,
    sections: Vec<BodyItem>,
}

impl Items {
    fn needs_record(&self) -> bool {
        self.envelope || self.bodystructure || self.body || !self.sections.is_empty()
    }
}

fn part_label(part: &Part) -> String {
    let nums: Vec<String> = part.0.as_ref().iter().map(|n| n.to_string()).collect();
    nums.join(".")
}

fn fields_label(fields: &Vec1<AString<'_>>) -> String {
    let mut out = Vec::new();
    for (i, f) in fields.as_ref().iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        super::output::push_astring(&mut out, f.as_ref());
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn section_label(section: &Option<Section<'_>>) -> String {
    let with = |p: &Option<Part>, s: &str| match p {
        Some(p) => format!("{}.{s}", part_label(p)),
        None => s.to_string(),
    };
    match section {
        None => String::new(),
        Some(Section::Part(p)) => part_label(p),
        Some(Section::Header(p)) => with(p, "HEADER"),
        Some(Section::HeaderFields(p, f)) => {
            with(p, &format!("HEADER.FIELDS ({})", fields_label(f)))
        }
        Some(Section::HeaderFieldsNot(p, f)) => {
            with(p, &format!("HEADER.FIELDS.NOT ({})", fields_label(f)))
        }
        Some(Section::Text(p)) => with(p, "TEXT"),
        Some(Section::Mime(p)) => format!("{}.MIME", part_label(p)),
    }
}

fn resolve(
    names: &MacroOrMessageDataItemNames<'_>,
    uid_command: bool,
) -> Result<Items, &'static str> {
    use imap_types::IntoStatic;
    let list: Vec<MessageDataItemName<'_>> = match names {
        MacroOrMessageDataItemNames::Macro(m) => m.expand(),
        MacroOrMessageDataItemNames::MessageDataItemNames(names) => names.clone(),
    };
    let mut items = Items {
        uid: uid_command,
        ..Items::default()
    };
    for name in list {
        match name {
            MessageDataItemName::Uid => items.uid = true,
            MessageDataItemName::Flags => items.flags = true,
            MessageDataItemName::Rfc822Size => items.size = true,
            MessageDataItemName::InternalDate => items.internal_date = true,
            MessageDataItemName::ModSeq => items.modseq = true,
            MessageDataItemName::Envelope => items.envelope = true,
            MessageDataItemName::BodyStructure => items.bodystructure = true,
            MessageDataItemName::Body => items.body = true,
            MessageDataItemName::BodyExt {
                section,
                partial,
                peek,
            } => items.sections.push(BodyItem {
                label: format!("BODY[{}]", section_label(&section)),
                section: section.map(IntoStatic::into_static),
                partial,
                sets_seen: !peek,
            }),
            MessageDataItemName::Rfc822 => items.sections.push(BodyItem {
                label: "RFC822".into(),
                section: None,
                partial: None,
                sets_seen: true,
            }),
            MessageDataItemName::Rfc822Header => items.sections.push(BodyItem {
                label: "RFC822.HEADER".into(),
                section: Some(Section::Header(None)),
                partial: None,
                sets_seen: false,
            }),
            MessageDataItemName::Rfc822Text => items.sections.push(BodyItem {
                label: "RFC822.TEXT".into(),
                section: Some(Section::Text(None)),
                partial: None,
                sets_seen: true,
            }),
            MessageDataItemName::Binary { .. } | MessageDataItemName::BinarySize { .. } => {
                return Err("BINARY is not supported")
            }
        }
    }
    Ok(items)
}

/// Whether `n` is in the set, `*` standing for `largest`.
pub(super) fn contains(set: &SequenceSet, n: u32, largest: u32) -> bool {
    let value = |s: &SeqOrUid| match s {
        SeqOrUid::Value(v) => v.get(),
        SeqOrUid::Asterisk => largest,
    };
    set.0.as_ref().iter().any(|seq| match seq {
        Sequence::Single(s) => value(s) == n,
        Sequence::Range(a, b) => {
            let (lo, hi) = (value(a).min(value(b)), value(a).max(value(b)));
            (lo..=hi).contains(&n)
        }
    })
}

/// The flags of a message as a FETCH FLAGS list (without parentheses): system flags, `\Recent`
/// when the message is recent in the session, then keywords.
pub(super) fn flag_list(index: &Index, entry: &Entry, recent: bool) -> String {
    let system = (entry.flags & ((1 << flag::KEYWORD_SHIFT) - 1)).count_ones() as usize;
    let mut names: Vec<&str> = index.flag_names(entry).collect();
    if recent {
        names.insert(system.min(names.len()), "\\Recent");
    }
    names.join(" ")
}

/// Encodes one data item with imap-codec, as it appears inside `FETCH (...)`.
fn encode_item(item: MessageDataItem<'static>) -> Vec<u8> {
    let seq = NonZeroU32::MIN;
    let response = Response::Data(Data::Fetch {
        seq,
        items: Vec1::from(item),
    });
    let out = ResponseCodec::default().encode(&response).dump();
    let inner = out
        .strip_prefix(b"* 1 FETCH (")
        .and_then(|o| o.strip_suffix(b")\r\n"))
        .expect("imap-codec encodes a one-item FETCH as `* 1 FETCH (item)`");
    inner.to_vec()
}

pub(super) async fn fetch<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    session: &mut Session<R, W>,
    tag: &str,
    set: &SequenceSet,
    names: &MacroOrMessageDataItemNames<'_>,
    uid_command: bool,
    changed_since: Option<u64>,
) -> std::io::Result<()> {
    let items = match resolve(names, uid_command) {
        Ok(mut items) => {
            items.modseq |= changed_since.is_some();
            session.condstore |= items.modseq;
            items
        }
        Err(reason) => {
            session
                .out
                .line(format!("{tag} BAD {reason}\r\n").as_bytes());
            return Ok(());
        }
    };
    let user = session
        .user
        .clone()
        .expect("fetch runs only when authenticated");
    let (exists, largest_uid, read_only) = {
        let selected = session
            .selected
            .as_ref()
            .expect("fetch runs only when selected");
        let index = &selected.index;
        (
            index.exists(),
            index.entries.last().map(|e| e.uid).unwrap_or(0),
            selected.read_only,
        )
    };
    let mut seen_set = false;
    let mut skipped_expunged = false;
    let mut seq = 0u32;
    while seq < exists {
        seq += 1;
        let entry: Entry = session.entry_at(seq);
        let wanted = if uid_command {
            contains(set, entry.uid, largest_uid)
        } else {
            contains(set, seq, exists)
        };
        if !wanted || changed_since.is_some_and(|m| entry.modseq <= m) {
            continue;
        }
        if entry.flags & flag::EXPUNGED != 0 {
            // Expunged by another session, not yet announced here: left out, as Dovecot does.
            skipped_expunged = true;
            continue;
        }
        seen_set |= items.sections.iter().any(|s| s.sets_seen)
            && !read_only
            && entry.flags & flag::SEEN == 0;
        if let Err(e) = fetch_one(session, &user, seq, entry, &items, read_only).await {
            match e {
                FetchError::Io(e) => return Err(e),
                FetchError::Mail(e) => {
                    tracing::warn!(error = %e, "fetch failed");
                    session.out.line(
                        format!("{tag} NO [UNAVAILABLE] storage temporarily unavailable\r\n")
                            .as_bytes(),
                    );
                    return Ok(());
                }
            }
        }
    }
    if seen_set {
        // Fold in the \Seen just written; its FETCH was sent already, so stay silent about flags.
        if let Err(e) = session.refresh_view(false, uid_command).await {
            tracing::debug!(error = %e, "refresh after fetch failed");
        }
    }
    let done = if skipped_expunged {
        "OK [EXPUNGEISSUED] Some messages were already expunged."
    } else {
        "OK FETCH completed"
    };
    session.out.line(format!("{tag} {done}\r\n").as_bytes());
    Ok(())
}

enum FetchError {
    Io(std::io::Error),
    Mail(MailError),
}

impl From<std::io::Error> for FetchError {
    fn from(e: std::io::Error) -> Self {
        FetchError::Io(e)
    }
}

impl From<MailError> for FetchError {
    fn from(e: MailError) -> Self {
        FetchError::Mail(e)
    }
}

/// Where a section's bytes come from.
enum Source {
    /// A byte range of the stored message.
    Range(u64, u64),
    /// Bytes computed from metadata (a header block, filtered header fields).
    Bytes(Vec<u8>),
}

/// The chunks covering bytes `start..end` of a stored body, as (chunk index, from, to) within each.
pub(super) fn chunk_span(
    record: &MessageRecord,
    start: u64,
    end: u64,
) -> impl Iterator<Item = (u32, usize, usize)> {
    let chunk = record.body.chunk_bytes as u64;
    let range = if start < end {
        (start / chunk)..((end - 1) / chunk + 1)
    } else {
        0..0
    };
    range.map(move |i| {
        let base = i * chunk;
        let from = start.saturating_sub(base) as usize;
        let to = (end - base).min(chunk) as usize;
        (i as u32, from, to.max(from))
    })
}

/// RFC 3501 forbids NUL in a literal; a stored message may hold some. Like Dovecot, each becomes
/// 0x80, so lengths (and every announced literal size) stay as stored.
fn no_nul(bytes: &mut [u8]) {
    for b in bytes.iter_mut().filter(|b| **b == 0) {
        *b = 0x80;
    }
}

/// Keeps (or, with `not`, drops) the named fields of a header block; the blank line ends it.
fn filter_header(header: &[u8], fields: &Vec1<AString<'_>>, not: bool) -> Vec<u8> {
    let wanted = |line: &[u8]| {
        let name = match line.iter().position(|&b| b == b':') {
            Some(colon) => line[..colon].trim_ascii(),
            None => return false,
        };
        fields
            .as_ref()
            .iter()
            .any(|f| f.as_ref().eq_ignore_ascii_case(name))
    };
    let mut out = Vec::new();
    let mut keep = false;
    for line in header.split_inclusive(|&b| b == b'\n') {
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        if !line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            keep = wanted(line) != not;
        }
        if keep {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Resolves a section to its bytes; `None` when the part does not exist (answered as empty).
async fn source(
    user: &UserStore,
    entry: &Entry,
    record: &MessageRecord,
    section: &Option<Section<'_>>,
) -> Result<Source, FetchError> {
    let meta: &MessageMeta = &record.meta;
    let size = record.body.size;
    let path = |p: &Option<Part>| -> Vec<u32> {
        p.as_ref()
            .map(|p| p.0.as_ref().iter().map(|n| n.get()).collect())
            .unwrap_or_default()
    };
    // The message (root or embedded) a HEADER/TEXT section of `p` refers to.
    let message_part = |p: &Option<Part>| match p {
        None => Some(&meta.root),
        Some(_) => match meta.part(&path(p)).map(|part| &part.kind) {
            Some(Kind::Message(m)) => Some(&m.part),
            _ => None,
        },
    };
    let empty = Source::Bytes(Vec::new());
    Ok(match section {
        None => Source::Range(0, size),
        Some(Section::Part(p)) => match meta.part(&path(&Some(p.clone()))) {
            Some(part) => Source::Range(part.body_start, part.body_end),
            None => empty,
        },
        Some(Section::Mime(p)) => match meta.part(&path(&Some(p.clone()))) {
            Some(part) => Source::Range(part.header_start, part.body_start),
            None => empty,
        },
        Some(Section::Text(p)) => match message_part(p) {
            Some(part) => Source::Range(
                part.body_start,
                if p.is_none() { size } else { part.body_end },
            ),
            None => empty,
        },
        Some(Section::Header(p)) => match message_part(p) {
            Some(_) if p.is_none() && meta.header_complete => Source::Bytes(meta.header.clone()),
            Some(part) => Source::Range(part.header_start, part.body_start),
            None => empty,
        },
        Some(Section::HeaderFields(p, fields)) | Some(Section::HeaderFieldsNot(p, fields)) => {
            let not = matches!(section, Some(Section::HeaderFieldsNot(..)));
            let header = match message_part(p) {
                Some(_) if p.is_none() && meta.header_complete => meta.header.clone(),
                Some(part) => {
                    // A header block is read whole to filter it, up to the scanner's cap.
                    let end = part
                        .body_start
                        .min(part.header_start + HEADER_BLOCK_MAX as u64);
                    let mut buf = Vec::new();
                    for (i, from, to) in chunk_span(record, part.header_start, end) {
                        let data = user.body_chunk(&entry.message, &record.body, i).await?;
                        buf.extend_from_slice(&data[from..to.min(data.len())]);
                    }
                    buf
                }
                None => return Ok(empty),
            };
            Source::Bytes(filter_header(&header, fields, not))
        }
    })
}

async fn fetch_one<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    session: &mut Session<R, W>,
    user: &UserStore,
    seq: u32,
    mut entry: Entry,
    items: &Items,
    read_only: bool,
) -> Result<(), FetchError> {
    let sets_seen = items.sections.iter().any(|s| s.sets_seen);
    let mut flags_changed = false;
    if sets_seen && !read_only && entry.flags & flag::SEEN == 0 {
        let selected = session.selected.as_mut().expect("still selected");
        let op = Op::FlagsAdd {
            message: entry.message,
            flags: vec!["\\Seen".to_string()],
        };
        user.log_append(&selected.entry, &op, selected.index.cursor.as_deref())
            .await?;
        entry.flags |= flag::SEEN;
        flags_changed = true;
    }
    let record = if items.needs_record() {
        Some(user.record(&entry.message).await?)
    } else {
        None
    };
    let mut head: Vec<u8> = format!("* {seq} FETCH (").into_bytes();
    let mut first = true;
    let mut sep = |s: &mut Vec<u8>| {
        if !first {
            s.push(b' ');
        }
        first = false;
    };
    if items.uid {
        sep(&mut head);
        head.extend_from_slice(format!("UID {}", entry.uid).as_bytes());
    }
    if items.flags || flags_changed {
        sep(&mut head);
        let selected = session.selected.as_ref().expect("still selected");
        let names = flag_list(&selected.index, &entry, selected.recent.contains(entry.uid));
        head.extend_from_slice(format!("FLAGS ({names})").as_bytes());
    }
    if items.modseq || (session.condstore && (items.flags || flags_changed)) {
        sep(&mut head);
        head.extend_from_slice(format!("MODSEQ ({})", entry.modseq).as_bytes());
    }
    if items.internal_date {
        sep(&mut head);
        let date = chrono::DateTime::from_timestamp(entry.internal_date, 0).unwrap_or_default();
        head.extend_from_slice(
            format!(
                "INTERNALDATE \"{}\"",
                date.format("%d-%b-%Y %H:%M:%S +0000")
            )
            .as_bytes(),
        );
    }
    if items.size {
        sep(&mut head);
        head.extend_from_slice(format!("RFC822.SIZE {}", entry.size).as_bytes());
    }
    if let Some(record) = &record {
        if items.envelope {
            sep(&mut head);
            head.extend_from_slice(&encode_item(MessageDataItem::Envelope(
                record.meta.envelope(),
            )));
        }
        if items.bodystructure {
            sep(&mut head);
            head.extend_from_slice(&encode_item(MessageDataItem::BodyStructure(
                record.meta.bodystructure(true),
            )));
        }
        if items.body {
            sep(&mut head);
            head.extend_from_slice(&encode_item(MessageDataItem::Body(
                record.meta.bodystructure(false),
            )));
        }
    }
    for item in &items.sections {
        let record = record.as_ref().expect("sections need the record");
        let src = source(user, &entry, record, &item.section).await?;
        let (full_start, full_end) = match &src {
            Source::Range(a, b) => (*a, (*b).max(*a)),
            Source::Bytes(b) => (0, b.len() as u64),
        };
        let (start, end, origin) = match item.partial {
            Some((origin, count)) => {
                let s = (full_start + origin as u64).min(full_end);
                (s, (s + count.get() as u64).min(full_end), Some(origin))
            }
            None => (full_start, full_end, None),
        };
        sep(&mut head);
        head.extend_from_slice(item.label.as_bytes());
        if let Some(origin) = origin {
            head.extend_from_slice(format!("<{origin}>").as_bytes());
        }
        head.extend_from_slice(format!(" {{{}}}\r\n", end - start).as_bytes());
        session.out.push(&head).await?;
        head.clear();
        match src {
            Source::Bytes(mut bytes) => {
                no_nul(&mut bytes[start as usize..end as usize]);
                session
                    .out
                    .push(&bytes[start as usize..end as usize])
                    .await?
            }
            Source::Range(..) => {
                // A storage error after the literal started cannot become a NO for this message (its
                // length is promised), so the connection is closed instead of sending junk.
                for (i, from, to) in chunk_span(record, start, end) {
                    match user.body_chunk(&entry.message, &record.body, i).await {
                        Ok(mut data) => {
                            let to = to.min(data.len());
                            no_nul(&mut data[from..to]);
                            session.out.push(&data[from..to]).await?
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "body unreadable mid-literal; closing");
                            return Err(FetchError::Io(std::io::Error::other(e.to_string())));
                        }
                    }
                }
            }
        }
    }
    head.extend_from_slice(b")\r\n");
    session.out.push(&head).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields_are_filtered_with_continuations() {
        let header = b"From: a\r\nSubject: x\r\n y\r\nTo: b\r\n\r\n";
        let fields = Vec1::from(AString::try_from("subject").expect("valid astring"));
        assert_eq!(
            filter_header(header, &fields, false),
            b"Subject: x\r\n y\r\n\r\n"
        );
        assert_eq!(
            filter_header(header, &fields, true),
            b"From: a\r\nTo: b\r\n\r\n"
        );
    }

    #[test]
    fn chunk_span_covers_exactly_the_range() {
        let record = |chunk_bytes| MessageRecord {
            body: crate::mail::BodyRef {
                id: [0; 16],
                size: 250,
                chunk_bytes,
                prefix: [0; 19],
                key: [0; 32],
            },
            internal_date: 0,
            meta: MessageMeta::default(),
        };
        let spans: Vec<_> = chunk_span(&record(100), 50, 250).collect();
        assert_eq!(spans, [(0, 50, 100), (1, 0, 100), (2, 0, 50)]);
        let spans: Vec<_> = chunk_span(&record(100), 120, 130).collect();
        assert_eq!(spans, [(1, 20, 30)]);
        assert_eq!(chunk_span(&record(100), 10, 10).count(), 0);
    }

    #[test]
    fn one_item_encodes_without_the_fetch_frame() {
        let out = encode_item(MessageDataItem::Rfc822Size(42));
        assert_eq!(out, b"RFC822.SIZE 42");
    }
}
