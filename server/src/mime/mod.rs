//! Streaming MIME scanner: per-message metadata (size, ENVELOPE, BODYSTRUCTURE, header block, part
//! byte ranges) computed while a delivered message streams through, chunk by chunk, to storage.
//!
//! Hand-written because no MIME crate parses incrementally (mail-parser and mailparse both want the
//! whole message in memory), and the server must never hold a whole message.
//!
//! The scanner follows Dovecot 2.3's message parser, which the conformance tests use as the
//! reference (`server/tests/mime_dovecot.rs`): the same boundary rules (prefix match, innermost
//! first, longest wins, the line break before a boundary belongs to the boundary), the same header
//! unfolding and Content-* parsing (RFC 2231 continuations kept encoded), the same envelope (raw
//! header values, encoded words kept raw). Sizes are octets of the bytes as fed (messages are stored
//! as received, normally CRLF), line counts are the number of LF octets in a part's body.
//!
//! Memory is bounded whatever the message size:
//! - one line head of [`LINE_HEAD_MAX`] bytes and the header field being read;
//! - per part header block, fields are kept up to [`HEADER_BLOCK_MAX`] bytes; lines beyond are still
//!   scanned for the end of the header and for boundaries, but their fields are ignored;
//! - the top-level header block is copied up to [`HEADER_BLOCK_MAX`] bytes into
//!   [`MessageMeta::header`] (beyond, `header_complete` is false and BODY\[HEADER\] must be read from
//!   storage using the root's byte range);
//! - at most [`MAX_NESTING`] nested parts (and so boundaries) and [`MAX_PARTS`] parts: beyond, the
//!   rest is treated as opaque body, as Dovecot does (a multipart or message/rfc822 part that could
//!   not be opened is reported as application/octet-stream);
//! - strings kept in part records and envelopes are bounded by [`META_BYTES_MAX`] in total: beyond,
//!   further parts keep only their media type and encoding, and `truncated` is set.

mod address;
pub(crate) use address::write_address_list;
pub mod decode;
mod header;
mod meta;
mod scanner;
mod structure;
pub mod text;

pub use meta::{
    Address, Content, Embedded, Envelope, Kind, MessageMeta, Part, BOUNDARY_MAX, HEADER_BLOCK_MAX,
    LINE_HEAD_MAX, MAX_ADDRESSES, MAX_NESTING, MAX_PARTS, META_BYTES_MAX,
};
pub use scanner::Scanner;
