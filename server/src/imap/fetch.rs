//! FETCH and UID FETCH: one message at a time, each response written as it is produced; bodies
//! stream from storage chunk by chunk, so memory does not grow with mailbox or message size.

use imap_types::fetch::{MacroOrMessageDataItemNames, MessageDataItemName};
use imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};
use tokio::io::{AsyncRead, AsyncWrite};

use super::session::Session;
use crate::mail::index::{flag, Entry, Op};
use crate::mail::MailError;

/// The items of one FETCH, resolved from the request.
#[derive(Default)]
struct Items {
    uid: bool,
    flags: bool,
    size: bool,
    internal_date: bool,
    modseq: bool,
    /// BODY[] / BODY.PEEK[] / RFC822: the whole message; `Some(peek)`.
    full_body: Option<Full>,
}

#[derive(Clone, Copy)]
enum Full {
    /// BODY[] or BODY.PEEK[] (label BODY[]).
    Body { peek: bool },
    /// RFC822 (label RFC822, sets \Seen).
    Rfc822,
}

fn resolve(names: &MacroOrMessageDataItemNames<'_>, uid_command: bool) -> Result<Items, &'static str> {
    let list: Vec<MessageDataItemName<'_>> = match names {
        MacroOrMessageDataItemNames::Macro(m) => m.expand(),
        MacroOrMessageDataItemNames::MessageDataItemNames(names) => names.clone(),
    };
    let mut items = Items { uid: uid_command, ..Items::default() };
    for name in list {
        match name {
            MessageDataItemName::Uid => items.uid = true,
            MessageDataItemName::Flags => items.flags = true,
            MessageDataItemName::Rfc822Size => items.size = true,
            MessageDataItemName::InternalDate => items.internal_date = true,
            MessageDataItemName::ModSeq => items.modseq = true,
            MessageDataItemName::BodyExt { section: None, partial: None, peek } => {
                items.full_body = Some(Full::Body { peek })
            }
            MessageDataItemName::Rfc822 => items.full_body = Some(Full::Rfc822),
            _ => return Err("fetch item not supported yet"),
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
            session.out.line(format!("{tag} BAD {reason}\r\n").as_bytes());
            return Ok(());
        }
    };
    let user = session.user.clone().expect("fetch runs only when authenticated");
    let (exists, largest_uid, read_only) = {
        let selected = session.selected.as_ref().expect("fetch runs only when selected");
        let index = &selected.index;
        (index.exists(), index.entries.last().map(|e| e.uid).unwrap_or(0), selected.read_only)
    };
    let mut seq = 0u32;
    while seq < exists {
        seq += 1;
        let entry: Entry = {
            let index = &session.selected.as_ref().expect("still selected").index;
            index.entries[seq as usize - 1]
        };
        let wanted = if uid_command { contains(set, entry.uid, largest_uid) } else { contains(set, seq, exists) };
        if !wanted || changed_since.is_some_and(|m| entry.modseq <= m) {
            continue;
        }
        if let Err(e) = fetch_one(session, &user, seq, entry, &items, read_only).await {
            match e {
                FetchError::Io(e) => return Err(e),
                FetchError::Mail(e) => {
                    tracing::warn!(error = %e, "fetch failed");
                    session.out.line(format!("{tag} NO [UNAVAILABLE] storage temporarily unavailable\r\n").as_bytes());
                    return Ok(());
                }
            }
        }
    }
    session.out.line(format!("{tag} OK FETCH completed\r\n").as_bytes());
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

async fn fetch_one<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    session: &mut Session<R, W>,
    user: &crate::mail::UserStore,
    seq: u32,
    mut entry: Entry,
    items: &Items,
    read_only: bool,
) -> Result<(), FetchError> {
    let sets_seen = matches!(items.full_body, Some(Full::Rfc822) | Some(Full::Body { peek: false }));
    let mut flags_changed = false;
    if sets_seen && !read_only && entry.flags & flag::SEEN == 0 {
        let selected = session.selected.as_mut().expect("still selected");
        let op = Op::FlagsAdd { message: entry.message, flags: vec!["\\Seen".to_string()] };
        user.log_append(&selected.entry, &op, selected.index.cursor.as_deref()).await?;
        entry.flags |= flag::SEEN;
        flags_changed = true;
    }
    let mut head = format!("* {seq} FETCH (");
    let mut first = true;
    let mut sep = |s: &mut String| {
        if !first {
            s.push(' ');
        }
        first = false;
    };
    if items.uid {
        sep(&mut head);
        head.push_str(&format!("UID {}", entry.uid));
    }
    if items.flags || flags_changed {
        sep(&mut head);
        let index = &session.selected.as_ref().expect("still selected").index;
        let names: Vec<&str> = index.flag_names(entry.flags).collect();
        head.push_str(&format!("FLAGS ({})", names.join(" ")));
    }
    if items.modseq || (session.condstore && (items.flags || flags_changed)) {
        sep(&mut head);
        head.push_str(&format!("MODSEQ ({})", entry.modseq));
    }
    if items.internal_date {
        sep(&mut head);
        let date = chrono::DateTime::from_timestamp(entry.internal_date, 0).unwrap_or_default();
        head.push_str(&format!("INTERNALDATE \"{}\"", date.format("%d-%b-%Y %H:%M:%S +0000")));
    }
    if items.size {
        sep(&mut head);
        head.push_str(&format!("RFC822.SIZE {}", entry.size));
    }
    let Some(full) = items.full_body else {
        head.push_str(")\r\n");
        session.out.push(head.as_bytes()).await?;
        return Ok(());
    };
    let record = user.record(&entry.message).await?;
    sep(&mut head);
    let label = match full {
        Full::Body { .. } => "BODY[]",
        Full::Rfc822 => "RFC822",
    };
    head.push_str(&format!("{label} {{{}}}\r\n", record.body.size));
    session.out.push(head.as_bytes()).await?;
    drop(head);
    // Stream the body: a storage error after the literal started cannot become a NO for this
    // message (its length is promised), so the connection is closed instead of sending junk.
    for i in 0..record.body.chunks() {
        match user.body_chunk(&entry.message, &record.body, i).await {
            Ok(chunk) => session.out.push(&chunk).await?,
            Err(e) => {
                tracing::warn!(error = %e, "body chunk unreadable mid-literal; closing");
                return Err(FetchError::Io(std::io::Error::other(e.to_string())));
            }
        }
    }
    session.out.push(b")\r\n").await?;
    Ok(())
}
