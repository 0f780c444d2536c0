//! The incremental scanner: a line-oriented state machine fed arbitrary chunks.
//!
//! It never looks back at bytes already fed: positions and LF counts are enough to compute every
//! part's byte range and line count, and a line's first [`LINE_HEAD_MAX`] bytes are enough to tell a
//! boundary line (so a boundary split across two chunks is recognised). Header fields are
//! accumulated until the next line shows they are complete (it does not start with SP or TAB).

use super::address::parse_address_list;
use super::header::{eq_ic, parse_content_type, parse_disposition, parse_encoding, parse_language};
use super::meta::{
    Address, Content, Embedded, Envelope, Kind, MessageMeta, Part, BOUNDARY_MAX, HEADER_BLOCK_MAX,
    LINE_HEAD_MAX, MAX_ADDRESSES, MAX_NESTING, MAX_PARTS, META_BYTES_MAX,
};

/// Longest header name Dovecot accepts; longer ones make the line a nameless value.
const HEADER_NAME_MAX: usize = 1000;
/// Bytes after "--" Dovecot compares when a line has no LF yet.
const BOUNDARY_END_MAX: usize = BOUNDARY_MAX + 4;

/// Streaming MIME scanner: `feed` chunks in order, then `finish`.
pub struct Scanner {
    /// Offset of the next byte.
    pos: u64,
    /// LF octets seen so far.
    lf: u64,
    /// Open parts, outermost first; never empty until `finish`.
    frames: Vec<Frame>,
    /// Active boundaries, outermost first.
    boundaries: Vec<Boundary>,
    mode: Mode,
    line: Line,
    /// Parts created so far, the root included.
    total_parts: u32,
    /// Header field being read (innermost part in header mode).
    field: Vec<u8>,
    field_open: bool,
    /// Bytes of the current header block kept in fields so far.
    block_kept: usize,
    /// Newline length (0, 1 or 2) of the last header line of the current block.
    prev_header_nl: u64,
    /// Newline length of the blank line that ended the innermost header, while the line after it
    /// is read (0 otherwise): if that line is a boundary, the blank line belongs to the boundary.
    eoh_nl: u64,
    header: Vec<u8>,
    header_complete: bool,
    meta_budget: usize,
    truncated: bool,
    top_envelope: Envelope,
}

struct Boundary {
    text: Vec<u8>,
    /// Index in `frames` of the multipart that owns it.
    owner: usize,
}

#[derive(Default)]
struct Frame {
    part: Part,
    children: Vec<Part>,
    embedded: Option<Box<Embedded>>,
    /// The root, or the message inside a message/rfc822: its header has an envelope.
    message_root: bool,
    envelope: Envelope,
    is_mime: bool,
    seen_content_type: bool,
    multipart: bool,
    digest: bool,
    rfc822: bool,
    pending_boundary: Option<Vec<u8>>,
    lf_at_body_start: u64,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    Header,
    /// Body of the innermost part; `prev_nl` is the newline length of the previous body line
    /// (0 on the first line, which has no line break before it belonging to a boundary).
    Body {
        prev_nl: u64,
    },
    /// Rest of a boundary line; `close` for a close delimiter (`--b--`).
    BoundaryRest {
        close: bool,
    },
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Class {
    Undecided,
    Plain,
    Field,
    BlankEndOfHeader,
    Rest,
}

struct Line {
    start: u64,
    len: u64,
    last: u8,
    head: Vec<u8>,
    class: Class,
    fresh: bool,
}

impl Default for Scanner {
    fn default() -> Self {
        Self::new()
    }
}

impl Scanner {
    /// A scanner at the start of a message.
    pub fn new() -> Self {
        let root = Frame {
            message_root: true,
            ..Frame::default()
        };
        Scanner {
            pos: 0,
            lf: 0,
            frames: vec![root],
            boundaries: Vec::new(),
            mode: Mode::Header,
            line: Line {
                start: 0,
                len: 0,
                last: 0,
                head: Vec::with_capacity(LINE_HEAD_MAX),
                class: Class::Undecided,
                fresh: true,
            },
            total_parts: 1,
            field: Vec::new(),
            field_open: false,
            block_kept: 0,
            prev_header_nl: 0,
            eoh_nl: 0,
            header: Vec::new(),
            header_complete: true,
            meta_budget: META_BYTES_MAX,
            truncated: false,
            top_envelope: Envelope::default(),
        }
    }

    /// Scans the next chunk of the message.
    pub fn feed(&mut self, chunk: &[u8]) {
        let mut data = chunk;
        while !data.is_empty() {
            let in_root_header = self.frames.len() == 1 && self.mode == Mode::Header;
            let lf_at = data.iter().position(|&b| b == b'\n');
            let seg_len = lf_at.unwrap_or(data.len());
            if in_root_header {
                let take = (seg_len + usize::from(lf_at.is_some())).min(data.len());
                self.copy_header(&data[..take]);
            }
            if self.line.fresh {
                self.begin_line();
            }
            self.line_bytes(&data[..seg_len]);
            self.pos += seg_len as u64;
            match lf_at {
                Some(i) => {
                    self.end_line();
                    data = &data[i + 1..];
                }
                None => data = &[],
            }
        }
    }

    /// Ends the message and returns its metadata.
    pub fn finish(mut self) -> MessageMeta {
        if !self.line.fresh && self.line.class == Class::Undecided {
            self.decide(false);
        }
        self.finish_field();
        // A header cut by the end of input ends there (an embedded message may follow, empty).
        while self.mode == Mode::Header {
            let depth = self.frames.len();
            self.end_of_header(self.pos, self.lf, false);
            if self.frames.len() == depth {
                break;
            }
        }
        let (end, lf) = (self.pos, self.lf);
        while self.frames.len() > 1 {
            self.close_frame(end, lf);
        }
        let mut root = self
            .frames
            .pop()
            .expect("the root frame stays open until finish");
        root.part.body_end = end;
        root.part.lines = lf - root.lf_at_body_start;
        let part = Self::frame_into_part(&mut root);
        MessageMeta {
            size: self.pos,
            header: self.header,
            header_complete: self.header_complete,
            envelope: self.top_envelope,
            root: part,
            truncated: self.truncated,
        }
    }

    fn copy_header(&mut self, bytes: &[u8]) {
        let room = HEADER_BLOCK_MAX.saturating_sub(self.header.len());
        if bytes.len() > room {
            self.header_complete = false;
        }
        self.header
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn begin_line(&mut self) {
        self.line.start = self.pos;
        self.line.len = 0;
        self.line.last = 0;
        self.line.head.clear();
        self.line.class = Class::Undecided;
        self.line.fresh = false;
    }

    /// Bytes of the current line (no LF among them).
    fn line_bytes(&mut self, seg: &[u8]) {
        if seg.is_empty() {
            return;
        }
        if self.line.len == 0 {
            self.first_byte(seg[0]);
        }
        let mut rest = seg;
        if self.line.class == Class::Undecided {
            let take = (LINE_HEAD_MAX - self.line.head.len()).min(rest.len());
            self.line.head.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.line.head.len() == LINE_HEAD_MAX {
                self.decide(false);
            }
        }
        if !rest.is_empty() && self.line.class == Class::Field {
            self.append_field(rest);
        }
        self.line.len += seg.len() as u64;
        self.line.last = seg[seg.len() - 1];
    }

    fn first_byte(&mut self, b: u8) {
        match self.mode {
            Mode::Header => {
                if (b == b' ' || b == b'\t') && self.field_open {
                    self.append_field(b"\n");
                    self.line.class = Class::Field;
                } else {
                    self.finish_field();
                }
            }
            Mode::Body { .. } => {
                if self.boundaries.is_empty() || b != b'-' {
                    self.line.class = Class::Plain;
                }
            }
            Mode::BoundaryRest { .. } => self.line.class = Class::Rest,
        }
    }

    fn append_field(&mut self, bytes: &[u8]) {
        let room = HEADER_BLOCK_MAX.saturating_sub(self.block_kept);
        let take = bytes.len().min(room);
        self.field.extend_from_slice(&bytes[..take]);
        self.block_kept += take;
    }

    /// Classifies the current line from its head; `complete` when its LF has been seen.
    fn decide(&mut self, complete: bool) {
        let found = self.find_boundary(complete);
        match self.mode {
            Mode::Header => {
                // An empty line never saw a first byte: the previous field is complete.
                self.finish_field();
                if let Some((idx, close)) = found {
                    if self.boundaries[idx].owner != self.frames.len() - 1 {
                        self.boundary_in_header(idx, close);
                        return;
                    }
                }
                let head = &self.line.head;
                if complete && (head.is_empty() || head.as_slice() == b"\r") {
                    self.line.class = Class::BlankEndOfHeader;
                } else {
                    self.line.class = Class::Field;
                    self.field.clear();
                    self.field_open = true;
                    let head = std::mem::take(&mut self.line.head);
                    self.append_field(&head);
                    self.line.head = head;
                }
            }
            Mode::Body { prev_nl } => match found {
                Some((idx, close)) => self.boundary_in_body(idx, close, prev_nl),
                None => self.line.class = Class::Plain,
            },
            Mode::BoundaryRest { .. } => self.line.class = Class::Rest,
        }
    }

    /// Dovecot's `boundary_line_find` + `boundary_find` on the line head.
    fn find_boundary(&self, complete: bool) -> Option<(usize, bool)> {
        let head = &self.line.head;
        if self.boundaries.is_empty() || head.len() < 2 || &head[..2] != b"--" {
            return None;
        }
        if self.total_parts >= MAX_PARTS {
            return None;
        }
        let data = &head[2..];
        let (len, trailing_dashes) = if complete {
            let mut n = self.line.len as usize - 2;
            if self.line.last == b'\r' {
                n -= 1;
            }
            let td = n > 2 && n <= data.len() && data[n - 1] == b'-' && data[n - 2] == b'-';
            (n, td)
        } else {
            (data.len().min(BOUNDARY_END_MAX), false)
        };
        let mut best: Option<usize> = None;
        for (i, b) in self.boundaries.iter().enumerate().rev() {
            let bl = b.text.len();
            if bl <= len
                && bl <= data.len()
                && data[..bl] == b.text[..]
                && best.is_none_or(|x| self.boundaries[x].text.len() < bl)
            {
                best = Some(i);
                if bl == len || (bl + 2 == len && trailing_dashes) {
                    break;
                }
            }
        }
        let i = best?;
        let bl = self.boundaries[i].text.len();
        let close = data.len() >= bl + 2 && &data[bl..bl + 2] == b"--";
        Some((i, close))
    }

    fn end_line(&mut self) {
        if self.line.class == Class::Undecided {
            self.decide(true);
        }
        let nl = if self.line.len > 0 && self.line.last == b'\r' {
            2
        } else {
            1
        };
        self.pos += 1;
        self.lf += 1;
        self.line.fresh = true;
        self.eoh_nl = 0;
        match self.line.class {
            Class::Field => {
                if nl == 2
                    && self.field.last() == Some(&b'\r')
                    && self.block_kept < HEADER_BLOCK_MAX
                {
                    self.field.pop();
                    self.block_kept -= 1;
                }
                self.prev_header_nl = nl;
            }
            Class::BlankEndOfHeader => {
                self.end_of_header(self.pos, self.lf, true);
                if matches!(self.mode, Mode::Body { .. }) {
                    self.eoh_nl = nl;
                }
            }
            Class::Plain => self.mode = Mode::Body { prev_nl: nl },
            Class::Rest => self.after_boundary_line(),
            Class::Undecided => unreachable!("decide() always classifies the line"),
        }
    }

    fn finish_field(&mut self) {
        if !self.field_open {
            return;
        }
        self.field_open = false;
        let raw = std::mem::take(&mut self.field);
        self.handle_field(&raw);
        self.field = raw;
        self.field.clear();
    }

    fn handle_field(&mut self, raw: &[u8]) {
        let first_line_end = raw.iter().position(|&b| b == b'\n').unwrap_or(raw.len());
        let Some(colon) = raw[..first_line_end].iter().position(|&b| b == b':') else {
            return;
        };
        let mut name_end = colon;
        while name_end > 0 && matches!(raw[name_end - 1], b' ' | b'\t') {
            name_end -= 1;
        }
        if colon > HEADER_NAME_MAX {
            return;
        }
        let name = &raw[..name_end];
        let value_all = &raw[colon + 1..];
        let first = first_line_end - colon - 1;
        let lwsp = value_all[..first]
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
        let skip = if lwsp == first { lwsp.min(1) } else { lwsp };
        let value = &value_all[skip..];

        let depth = self.frames.len() - 1;
        let f = &mut self.frames[depth];
        if eq_ic(name, b"Mime-Version") {
            f.is_mime = true;
        }
        if name.len() > 8 && eq_ic(&name[..8], b"Content-") {
            Self::content_field(f, &name[8..], value);
        }
        if f.message_root {
            let env = if depth == 0 {
                &mut self.top_envelope
            } else {
                &mut f.envelope
            };
            envelope_field(env, name, value);
        }
    }

    fn content_field(f: &mut Frame, name: &[u8], value: &[u8]) {
        let c = &mut f.part.content;
        if eq_ic(name, b"Type") {
            f.is_mime = true;
            if f.seen_content_type {
                return;
            }
            f.seen_content_type = true;
            let ct = parse_content_type(value);
            let full = &ct.full;
            if eq_ic(full, b"message/rfc822") {
                f.rfc822 = true;
            } else if full.len() >= 4
                && eq_ic(&full[..4], b"text")
                && (full.len() == 4 || full[4] == b'/')
            {
                // text: the default kind
            } else if full.len() >= 10 && eq_ic(&full[..10], b"multipart/") {
                f.multipart = true;
                f.digest = eq_ic(&full[10..], b"digest");
            }
            let slash = full.iter().position(|&b| b == b'/');
            c.media_type = Some(full[..slash.unwrap_or(full.len())].to_vec());
            c.subtype = Some(slash.map_or(Vec::new(), |s| full[s + 1..].to_vec()));
            if ct.ok {
                if f.multipart {
                    f.pending_boundary = ct
                        .params
                        .iter()
                        .find(|(k, _)| eq_ic(k, b"boundary"))
                        .map(|(_, v)| v[..v.len().min(BOUNDARY_MAX)].to_vec());
                }
                c.params = ct.params;
            }
        } else if eq_ic(name, b"Transfer-Encoding") {
            if c.encoding.is_none() {
                c.encoding = parse_encoding(value);
            }
        } else if eq_ic(name, b"ID") {
            c.id.get_or_insert_with(|| value.to_vec());
        } else if eq_ic(name, b"MD5") {
            c.md5.get_or_insert_with(|| value.to_vec());
        } else if eq_ic(name, b"Description") {
            c.description.get_or_insert_with(|| value.to_vec());
        } else if eq_ic(name, b"Location") {
            c.location.get_or_insert_with(|| value.to_vec());
        } else if eq_ic(name, b"Language") {
            if c.language.is_empty() {
                c.language = parse_language(value);
            }
        } else if eq_ic(name, b"Disposition") && c.disposition_params.is_empty() {
            if let Some((d, params)) = parse_disposition(value) {
                c.disposition = Some(d);
                c.disposition_params = params;
            }
        }
    }

    /// The header of the innermost part ends; its body starts at `body_start` (`lf` LFs before it).
    fn end_of_header(&mut self, body_start: u64, lf: u64, at_blank_line: bool) {
        self.finish_field();
        let depth = self.frames.len() - 1;
        let parent_digest = depth > 0 && self.frames[depth - 1].digest;
        let f = &mut self.frames[depth];
        let mut multipart_open = false;
        if at_blank_line && f.is_mime {
            if let Some(b) = f.pending_boundary.take() {
                if depth + 1 < MAX_NESTING {
                    self.boundaries.push(Boundary {
                        text: b,
                        owner: depth,
                    });
                    multipart_open = true;
                } else {
                    f.multipart = false;
                    self.truncated = true;
                }
            }
        }
        f.pending_boundary = None;
        if !f.is_mime {
            f.multipart = false;
            f.digest = false;
            f.rfc822 = false;
            f.part.content = Content::default();
        }
        if (!f.seen_content_type || !f.is_mime) && parent_digest {
            f.rfc822 = true;
        }
        f.part.body_start = body_start;
        f.lf_at_body_start = lf;
        // Bound the strings kept for this part.
        let cost = f.part.content.byte_len() + f.envelope.byte_len();
        if cost > self.meta_budget {
            let c = &mut f.part.content;
            let cut = |v: &mut Option<Vec<u8>>| {
                if let Some(v) = v {
                    v.truncate(64)
                }
            };
            cut(&mut c.media_type);
            cut(&mut c.subtype);
            cut(&mut c.encoding);
            let kept = Content {
                media_type: c.media_type.take(),
                subtype: c.subtype.take(),
                encoding: c.encoding.take(),
                ..Content::default()
            };
            *c = kept;
            f.envelope = Envelope::default();
            self.truncated = true;
            self.meta_budget = self.meta_budget.saturating_sub(f.part.content.byte_len());
        } else {
            self.meta_budget -= cost;
        }
        let rfc822 = f.rfc822;
        self.mode = Mode::Body { prev_nl: 0 };
        if multipart_open || !rfc822 {
            return;
        }
        if depth + 1 < MAX_NESTING && self.total_parts < MAX_PARTS {
            self.total_parts += 1;
            let mut child = Frame {
                message_root: true,
                ..Frame::default()
            };
            child.part.header_start = body_start;
            self.frames.push(child);
            self.start_header_block();
        } else {
            f.rfc822 = false;
            self.truncated = true;
        }
    }

    fn start_header_block(&mut self) {
        self.mode = Mode::Header;
        self.field.clear();
        self.field_open = false;
        self.block_kept = 0;
        self.prev_header_nl = 0;
    }

    /// A boundary line starts while the innermost part is still in its header.
    fn boundary_in_header(&mut self, idx: usize, close: bool) {
        let p = self.line.start;
        let n = self.prev_header_nl;
        let end = p - n;
        let lf_end = self.lf - u64::from(n > 0);
        let depth = self.frames.len() - 1;
        self.end_of_header(end, lf_end, false);
        if self.frames.len() - 1 > depth {
            // An embedded message with nothing in it.
            self.end_of_header(end, lf_end, false);
        }
        let owner = self.boundaries[idx].owner;
        while self.frames.len() - 1 > depth {
            self.close_frame(end, lf_end);
        }
        if depth > owner {
            self.close_frame(end, lf_end);
        }
        while self.frames.len() - 1 > owner {
            self.close_frame(p, self.lf);
        }
        self.after_boundary_found(idx, close);
    }

    /// A boundary line starts in a body; the line break before it (if any) belongs to it.
    fn boundary_in_body(&mut self, idx: usize, close: bool, prev_nl: u64) {
        let end = self.line.start - prev_nl;
        let lf_end = self.lf - u64::from(prev_nl > 0);
        let owner = self.boundaries[idx].owner;
        if self.eoh_nl > 0 && prev_nl == 0 && owner != self.frames.len() - 1 {
            // Dovecot's parser: the body is empty and the blank line that ended the header is the
            // line break before the boundary, so it leaves the header (BODY[n.MIME] / n.HEADER end
            // without it); the enclosing parts keep it in their bodies.
            let at = self.line.start - self.eoh_nl;
            self.close_frame(at, self.lf - 1);
        }
        while self.frames.len() - 1 > owner {
            self.close_frame(end, lf_end);
        }
        self.after_boundary_found(idx, close);
    }

    fn after_boundary_found(&mut self, idx: usize, close: bool) {
        self.boundaries.truncate(if close { idx } else { idx + 1 });
        self.mode = Mode::BoundaryRest { close };
        self.line.class = Class::Rest;
    }

    fn after_boundary_line(&mut self) {
        let depth = self.frames.len() - 1;
        if self.boundaries.last().is_some_and(|b| b.owner == depth) {
            self.total_parts += 1;
            let mut child = Frame {
                is_mime: true,
                ..Frame::default()
            };
            child.part.header_start = self.pos;
            child.part.body_start = self.pos;
            child.part.body_end = self.pos;
            self.frames.push(child);
            self.start_header_block();
        } else {
            self.mode = Mode::Body { prev_nl: 0 };
        }
    }

    /// Closes the innermost part, its body ending at `end` with `lf` LFs before it.
    fn close_frame(&mut self, end: u64, lf: u64) {
        let mut f = self
            .frames
            .pop()
            .expect("close_frame is only called below the root");
        if f.part.body_start < f.part.header_start || f.part.body_start > end {
            // Header never ended normally (cannot happen: every path ends the header first).
            f.part.body_start = end;
            f.lf_at_body_start = lf;
        }
        f.part.body_end = end;
        f.part.lines = lf.saturating_sub(f.lf_at_body_start);
        let message_root = f.message_root;
        let envelope = std::mem::take(&mut f.envelope);
        let part = Self::frame_into_part(&mut f);
        let parent = self.frames.last_mut().expect("the root frame stays open");
        if message_root {
            parent.embedded = Some(Box::new(Embedded { envelope, part }));
        } else {
            parent.children.push(part);
        }
    }

    fn frame_into_part(f: &mut Frame) -> Part {
        let mut part = std::mem::take(&mut f.part);
        part.kind = if f.multipart {
            Kind::Multipart(std::mem::take(&mut f.children))
        } else if f.rfc822 {
            let embedded = f.embedded.take().unwrap_or_else(|| {
                let at = part.body_start;
                Box::new(Embedded {
                    envelope: Envelope::default(),
                    part: Part {
                        header_start: at,
                        body_start: at,
                        body_end: at,
                        ..Part::default()
                    },
                })
            });
            Kind::Message(embedded)
        } else {
            Kind::Single
        };
        part
    }
}

/// The envelope's single-valued fields by header name: the last one of a message wins.
const ENVELOPE_TEXTS: [(&[u8], fn(&mut Envelope) -> &mut Option<Vec<u8>>); 4] = [
    (b"Date", |e| &mut e.date),
    (b"Subject", |e| &mut e.subject),
    (b"Message-ID", |e| &mut e.message_id),
    (b"In-Reply-To", |e| &mut e.in_reply_to),
];

/// The envelope's address lists by header name: every such field adds to its list.
const ENVELOPE_ADDRESSES: [(&[u8], fn(&mut Envelope) -> &mut Vec<Address>); 6] = [
    (b"From", |e| &mut e.from),
    (b"Sender", |e| &mut e.sender),
    (b"Reply-To", |e| &mut e.reply_to),
    (b"To", |e| &mut e.to),
    (b"Cc", |e| &mut e.cc),
    (b"Bcc", |e| &mut e.bcc),
];

fn envelope_field(env: &mut Envelope, name: &[u8], value: &[u8]) {
    if let Some((_, field)) = ENVELOPE_TEXTS.iter().find(|(n, _)| eq_ic(name, n)) {
        *field(env) = Some(value.to_vec());
    } else if let Some((_, field)) = ENVELOPE_ADDRESSES.iter().find(|(n, _)| eq_ic(name, n)) {
        let list = field(env);
        let room = MAX_ADDRESSES.saturating_sub(list.len());
        list.extend(parse_address_list(value, room));
    }
}

impl MessageMeta {
    /// Scans a whole message held in memory (tests, small messages).
    pub fn from_bytes(message: &[u8]) -> Self {
        let mut s = Scanner::new();
        s.feed(message);
        s.finish()
    }
}

#[cfg(test)]
mod tests;
