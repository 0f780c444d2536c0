//! What the scanner records of a message, sealed with it so that FETCH need not read the body: the
//! envelope, the part tree with each part's Content-* values and byte ranges, and the bounds on it.

use serde::{Deserialize, Serialize};

/// Bytes of the start of each line kept to recognise boundary lines ("--" + 84 + "--").
pub const LINE_HEAD_MAX: usize = 88;
/// Bytes of one part's header block whose fields are parsed; also the cap on the kept top-level header.
pub const HEADER_BLOCK_MAX: usize = 64 * 1024;
/// Longest boundary recognised; longer boundary parameters are truncated (as Dovecot does).
pub const BOUNDARY_MAX: usize = 80;
/// Deepest nesting of parts (multipart children, message/rfc822 bodies), as Dovecot's default.
pub const MAX_NESTING: usize = 100;
/// Most parts in one message, the root included, as Dovecot's default.
pub const MAX_PARTS: u32 = 10_000;
/// Total bytes of strings kept in part records and envelopes.
pub const META_BYTES_MAX: usize = 1024 * 1024;
/// Addresses kept per address header.
pub const MAX_ADDRESSES: usize = 1000;

/// The metadata FETCH answers from without reading the body.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct MessageMeta {
    /// RFC822.SIZE: octets of the message as fed.
    pub size: u64,
    /// The top-level header block, blank line included, up to [`HEADER_BLOCK_MAX`] bytes.
    pub header: Vec<u8>,
    /// False when `header` was cut at [`HEADER_BLOCK_MAX`].
    pub header_complete: bool,
    /// The top-level ENVELOPE, raw values.
    pub envelope: Envelope,
    /// The message itself as a part: its header is the message header, its body the message body.
    pub root: Part,
    /// True when a bound (parts, nesting, metadata bytes) cut the analysis short.
    pub truncated: bool,
}

/// ENVELOPE values as found in the header (raw, unfolded with LF, encoded words not decoded).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct Envelope {
    /// Last `Date:` value.
    pub date: Option<Vec<u8>>,
    /// Last `Subject:` value.
    pub subject: Option<Vec<u8>>,
    /// All `From:` addresses.
    pub from: Vec<Address>,
    /// All `Sender:` addresses (FETCH falls back to `from`).
    pub sender: Vec<Address>,
    /// All `Reply-To:` addresses (FETCH falls back to `from`).
    pub reply_to: Vec<Address>,
    /// All `To:` addresses.
    pub to: Vec<Address>,
    /// All `Cc:` addresses.
    pub cc: Vec<Address>,
    /// All `Bcc:` addresses.
    pub bcc: Vec<Address>,
    /// Last `In-Reply-To:` value.
    pub in_reply_to: Option<Vec<u8>>,
    /// Last `Message-ID:` value.
    pub message_id: Option<Vec<u8>>,
}

/// One ENVELOPE address; a group start has only `mailbox` (the group name), a group end nothing.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct Address {
    /// Display name (or comment).
    pub name: Option<Vec<u8>>,
    /// Source route (`@a,@b`).
    pub route: Option<Vec<u8>>,
    /// Local part, or group name.
    pub mailbox: Option<Vec<u8>>,
    /// Domain.
    pub domain: Option<Vec<u8>>,
}

/// One MIME part and where it lies in the stored message.
///
/// Byte ranges serve the section fetches by reading only those bytes: BODY\[n.MIME\] (and the
/// message header for the root) is `header_start..body_start`, BODY\[n\] is `body_start..body_end`;
/// for a message/rfc822 part, BODY\[n.HEADER\] and BODY\[n.TEXT\] are the header and body of the
/// [`Embedded::part`], and BODY\[TEXT\] is the root's body.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct Part {
    /// Offset of the first header byte.
    pub header_start: u64,
    /// Offset of the first body byte (after the blank line ending the header).
    pub body_start: u64,
    /// Offset just past the body (before the line break preceding the next boundary).
    pub body_end: u64,
    /// LF octets in the body.
    pub lines: u64,
    /// Content-* header values.
    pub content: Content,
    /// What the body holds.
    pub kind: Kind,
}

/// What a part's body holds.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub enum Kind {
    /// A leaf part.
    #[default]
    Single,
    /// A multipart: its children, in order (may be empty for broken input).
    Multipart(Vec<Part>),
    /// A message/rfc822: the embedded message.
    Message(Box<Embedded>),
}

/// The message inside a message/rfc822 part.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct Embedded {
    /// Its envelope.
    pub envelope: Envelope,
    /// The message as a part (header = its header, body = its body).
    pub part: Part,
}

/// The Content-* values of a part (all empty when the part is not MIME).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct Content {
    /// Media type as written (`None`: no Content-Type).
    pub media_type: Option<Vec<u8>>,
    /// Media subtype as written.
    pub subtype: Option<Vec<u8>>,
    /// Content-Type parameters, in Dovecot's order.
    pub params: Vec<(Vec<u8>, Vec<u8>)>,
    /// Content-ID, raw.
    pub id: Option<Vec<u8>>,
    /// Content-Description, raw.
    pub description: Option<Vec<u8>>,
    /// Content-Transfer-Encoding token as written.
    pub encoding: Option<Vec<u8>>,
    /// Content-MD5, raw.
    pub md5: Option<Vec<u8>>,
    /// Content-Disposition token.
    pub disposition: Option<Vec<u8>>,
    /// Content-Disposition parameters.
    pub disposition_params: Vec<(Vec<u8>, Vec<u8>)>,
    /// Content-Language tags.
    pub language: Vec<Vec<u8>>,
    /// Content-Location, raw.
    pub location: Option<Vec<u8>>,
}

impl Content {
    pub(super) fn byte_len(&self) -> usize {
        let o = |v: &Option<Vec<u8>>| v.as_ref().map_or(0, Vec::len);
        let ps =
            |v: &Vec<(Vec<u8>, Vec<u8>)>| v.iter().map(|(a, b)| a.len() + b.len()).sum::<usize>();
        o(&self.media_type)
            + o(&self.subtype)
            + ps(&self.params)
            + o(&self.id)
            + o(&self.description)
            + o(&self.encoding)
            + o(&self.md5)
            + o(&self.disposition)
            + ps(&self.disposition_params)
            + self.language.iter().map(Vec::len).sum::<usize>()
            + o(&self.location)
    }
}

impl Envelope {
    pub(super) fn byte_len(&self) -> usize {
        let o = |v: &Option<Vec<u8>>| v.as_ref().map_or(0, Vec::len);
        let al = |v: &Vec<Address>| {
            v.iter()
                .map(|a| o(&a.name) + o(&a.route) + o(&a.mailbox) + o(&a.domain) + 8)
                .sum::<usize>()
        };
        o(&self.date)
            + o(&self.subject)
            + al(&self.from)
            + al(&self.sender)
            + al(&self.reply_to)
            + al(&self.to)
            + al(&self.cc)
            + al(&self.bcc)
            + o(&self.in_reply_to)
            + o(&self.message_id)
    }
}

impl MessageMeta {
    /// The part at an IMAP section path (`[1, 2]` is BODY\[1.2\]); `[]` is the message itself.
    ///
    /// As in IMAP, part 1 of a non-multipart message is its body, and the parts of a
    /// message/rfc822 part are those of the embedded message.
    pub fn part(&self, path: &[u32]) -> Option<&Part> {
        let mut node = &self.root;
        let mut message_level = true;
        for &n in path {
            if !message_level {
                if let Kind::Message(m) = &node.kind {
                    node = &m.part;
                    message_level = true;
                }
            }
            match &node.kind {
                Kind::Multipart(children) => {
                    let i = usize::try_from(n).ok()?.checked_sub(1)?;
                    node = children.get(i)?;
                    message_level = false;
                }
                _ if message_level && n == 1 => message_level = false,
                _ => return None,
            }
        }
        Some(node)
    }
}
