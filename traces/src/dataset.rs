//! Seeded mailbox dataset generator: RFC 5322 emails with CRLF line endings whose byte sizes are
//! exactly the recorded ones (`data/mailbox_email_sizes.csv`), in varied MIME shapes, with headers
//! drawn from a small fixed pool of people and words so that SEARCH and threading find things.
//!
//! Every email is a pure function of `(seed, index, size)`: [`email`] makes one at a time, so callers
//! can stream a 1k-email set (~236 MB) without holding it. [`generate`] and [`scaled`] are iterators
//! or collections over it.

use chrono::{DateTime, FixedOffset};
use rand::seq::SliceRandom as _;
use rand::{Rng as _, RngCore as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;

use crate::mime_gen::{self, Draft, ATTACHMENT_KINDS};

/// The embedded `pos,size,mailbox` table of recorded email sizes.
const SIZES_CSV: &str = include_str!("../data/mailbox_email_sizes.csv");

/// Smallest size [`email`] can make: the date, from and message-id headers alone need it.
pub const MIN_SIZE: u64 = 200;

/// Sizes above this always get a base64 attachment carrying most of the bytes.
const LARGE_SIZE: u64 = 64 * 1024;

/// The MIME shape of a generated email.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Shape {
    /// A single `text/plain` part, 7bit.
    PlainText,
    /// A single `text/plain` part, quoted-printable with accented words.
    PlainTextQuotedPrintable,
    /// `multipart/alternative`: `text/plain` then `text/html`.
    Alternative,
    /// `multipart/mixed`: a text or alternative body, then one or two base64 attachments.
    MixedAttachment,
    /// `multipart/mixed`: a text body, a `message/rfc822` part (a forwarded email), and for large
    /// sizes a base64 attachment.
    ForwardedMessage,
}

/// One generated email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    /// The whole message, CRLF line endings, exactly the requested size.
    pub bytes: Vec<u8>,
    /// Its MIME structure.
    pub shape: Shape,
    /// The decoded `Subject` (Unicode); empty for the tiniest sizes that carry no `Subject` header.
    pub subject: String,
    /// The sender's address (addr-spec, e.g. `alice.martin@example.org`), as in the `From` header.
    pub from: String,
    /// The `Message-ID`, with its angle brackets.
    pub message_id: String,
    /// The `Date` header value (RFC 5322, e.g. `Wed, 1 Nov 2023 09:12:44 +0100`).
    pub date: String,
}

/// Why an email cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatasetError {
    /// The size is below [`MIN_SIZE`].
    #[error("an email of {size} bytes is below the smallest valid message ({min} bytes)")]
    TooSmall { size: u64, min: u64 },
    /// The size does not fit this platform's address space.
    #[error("an email of {size} bytes does not fit in memory here")]
    TooLarge { size: u64 },
}

/// A person of the fixed pool: senders and recipients of generated emails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Person {
    /// Display name (may be non-ASCII, then RFC 2047 encoded in headers).
    pub name: &'static str,
    /// Local part of the address.
    pub local: &'static str,
    /// Domain of the address.
    pub domain: &'static str,
}

impl Person {
    /// `local@domain`.
    pub fn address(&self) -> String {
        format!("{}@{}", self.local, self.domain)
    }
}

/// The fixed pool of people: SEARCH FROM/TO/CC on any of these addresses finds generated emails.
pub static PEOPLE: &[Person] = &[
    Person {
        name: "Alice Martin",
        local: "alice.martin",
        domain: "example.org",
    },
    Person {
        name: "Bob Durand",
        local: "bob",
        domain: "example.com",
    },
    Person {
        name: "Élodie Dupré",
        local: "elodie.dupre",
        domain: "exemple.fr",
    },
    Person {
        name: "Jürgen Müller",
        local: "j.mueller",
        domain: "beispiel.de",
    },
    Person {
        name: "Chloé Bernard",
        local: "chloe",
        domain: "deuxfleurs.example",
    },
    Person {
        name: "David Nguyen",
        local: "dnguyen",
        domain: "mail.example.net",
    },
    Person {
        name: "Fatima Zahra El Idrissi",
        local: "fatima.elidrissi",
        domain: "example.org",
    },
    Person {
        name: "Grégoire Lefèvre",
        local: "gregoire",
        domain: "exemple.fr",
    },
    Person {
        name: "Hannah O'Brien",
        local: "hannah.obrien",
        domain: "example.ie",
    },
    Person {
        name: "Ines Garcia",
        local: "ines",
        domain: "ejemplo.es",
    },
    Person {
        name: "Kenji Sato",
        local: "k.sato",
        domain: "example.jp",
    },
    Person {
        name: "Lucas Petit",
        local: "lucas.petit",
        domain: "deuxfleurs.example",
    },
    Person {
        name: "Newsletter Garage",
        local: "news",
        domain: "garage.example",
    },
    Person {
        name: "Zoë Lambert",
        local: "zoe.lambert",
        domain: "example.com",
    },
];

/// Mail clients named in `User-Agent` / `X-Mailer`.
static MAILERS: &[(&str, &str)] = &[
    ("User-Agent", "Mozilla Thunderbird 115.7.0"),
    ("X-Mailer", "Geary/44.1"),
    ("X-Mailer", "Mailspring"),
    ("X-Mailer", "Mailbird 3.0.5.0"),
    ("X-Mailer", "Apple Mail (2.3731.700.6)"),
    ("User-Agent", "Roundcube Webmail/1.6.5"),
];

/// Time-zone offsets of generated dates, in seconds east of UTC.
static OFFSETS: &[i32] = &[3600, 0, -5 * 3600, 2 * 3600, 19_800];

/// 2023-11-01T08:00:00Z: the first generated date (the trace searches SINCE 2023-11-16 and later).
const EPOCH_SECS: i64 = 1_698_825_600;

/// Derivation streams of the per-email RNG.
#[derive(Clone, Copy)]
enum Purpose {
    Sender = 1,
    MessageId = 2,
    Thread = 3,
    Subject = 4,
    Meta = 5,
    Body = 6,
    Copy = 7,
}

/// An RNG for one purpose of one email of one seed.
fn rng_for(seed: u64, index: u64, purpose: Purpose) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&index.to_le_bytes());
    key[16..24].copy_from_slice(&(purpose as u64).to_le_bytes());
    key[24..].copy_from_slice(b"imapsim1");
    ChaCha8Rng::from_seed(key)
}

fn parse_sizes(mailbox: &str) -> Vec<u64> {
    SIZES_CSV
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut cols = line.split(',');
            let _pos = cols.next()?;
            let size = cols.next()?;
            (cols.next()? == mailbox)
                .then(|| size.parse().expect("embedded csv holds integer sizes"))
        })
        .collect()
}

/// The 100 email sizes of the blog's test dataset, in the dataset's order (23,594,512 bytes).
pub fn recorded_sizes() -> Vec<u64> {
    parse_sizes("dataset")
}

/// The 2,327 email sizes of a real personal inbox.
pub fn personal_sizes() -> Vec<u64> {
    parse_sizes("personal")
}

/// The sender of email `index` (an index into [`PEOPLE`]).
fn sender(seed: u64, index: u64) -> usize {
    rng_for(seed, index, Purpose::Sender).gen_range(0..PEOPLE.len())
}

/// The Message-ID of email `index`, computable without generating it (for In-Reply-To).
fn message_id(seed: u64, index: u64) -> String {
    let mut rng = rng_for(seed, index, Purpose::MessageId);
    let person = PEOPLE[sender(seed, index)];
    format!(
        "<{:016x}.{:08x}@{}>",
        rng.next_u64(),
        rng.next_u32(),
        person.domain
    )
}

/// The email that email `index` replies to, if any (one of the four before it).
fn parent(seed: u64, index: u64) -> Option<u64> {
    let mut rng = rng_for(seed, index, Purpose::Thread);
    (index > 0 && rng.gen_bool(0.35)).then(|| index - 1 - rng.gen_range(0..index.min(4)))
}

/// The subject of a thread started by email `root`.
fn subject_base(seed: u64, root: u64) -> String {
    let mut rng = rng_for(seed, root, Purpose::Subject);
    let n = rng.gen_range(2..=6);
    let mut words: Vec<String> = (0..n)
        .map(|_| mime_gen::word(&mut rng, false).to_owned())
        .collect();
    if let Some(first) = words.first_mut() {
        let mut c = first.chars();
        if let Some(h) = c.next() {
            *first = h.to_uppercase().chain(c).collect();
        }
    }
    let s = words.join(" ");
    if rng.gen_bool(0.15) {
        format!("[{}] {s}", mime_gen::word(&mut rng, true))
    } else {
        s
    }
}

/// Headers shared by all shapes, computed from the seed and index alone.
struct Meta {
    date: String,
    from: Person,
    to: Vec<Person>,
    cc: Vec<Person>,
    subject: String,
    subject_b: bool,
    names_b: bool,
    message_id: String,
    in_reply_to: Option<String>,
    references: Vec<String>,
    mailer: Option<(&'static str, &'static str)>,
}

fn meta(seed: u64, index: u64) -> Meta {
    let mut rng = rng_for(seed, index, Purpose::Meta);
    let from_idx = sender(seed, index);
    let mut others: Vec<Person> = PEOPLE
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != from_idx)
        .map(|(_, p)| *p)
        .collect();
    others.shuffle(&mut rng);
    let n_to = rng.gen_range(1..=3);
    let n_cc = if rng.gen_bool(0.4) {
        rng.gen_range(1..=2)
    } else {
        0
    };
    let to = others[..n_to].to_vec();
    let cc = others[n_to..n_to + n_cc].to_vec();

    // Emails 0..99 span 2023-11-01 to 2024-02-13, 25 h apart; each further hundred is 10 min
    // later (wrapping after 100,000 hundreds, so any index stays within chrono's range).
    let secs = EPOCH_SECS
        + i64::try_from(index % 100).expect("< 100") * 25 * 3600
        + i64::try_from(index / 100 % 100_000).expect("< 100,000") * 600
        + rng.gen_range(0..3600);
    let offset = FixedOffset::east_opt(*OFFSETS.choose(&mut rng).expect("OFFSETS is not empty"))
        .expect("offsets are within a day");
    let date = DateTime::from_timestamp(secs, 0)
        .expect("generated dates are in chrono's range")
        .with_timezone(&offset)
        .to_rfc2822();

    let mut ancestors = Vec::new();
    let mut cursor = parent(seed, index);
    while let Some(p) = cursor {
        ancestors.push(p);
        if ancestors.len() >= 12 {
            break;
        }
        cursor = parent(seed, p);
    }
    let root = ancestors.last().copied().unwrap_or(index);
    let base = subject_base(seed, root);
    let subject = if ancestors.is_empty() {
        base
    } else {
        format!("Re: {base}")
    };
    Meta {
        date,
        from: PEOPLE[from_idx],
        to,
        cc,
        subject,
        subject_b: rng.gen_bool(0.5),
        names_b: rng.gen_bool(0.3),
        message_id: message_id(seed, index),
        in_reply_to: ancestors.first().map(|&p| message_id(seed, p)),
        references: ancestors
            .iter()
            .rev()
            .map(|&p| message_id(seed, p))
            .collect(),
        mailer: rng
            .gen_bool(0.7)
            .then(|| *MAILERS.choose(&mut rng).expect("MAILERS is not empty")),
    }
}

/// `Name <addr>` with the display name quoted or RFC 2047 encoded as needed.
fn mailbox(p: &Person, b: bool) -> String {
    if p.name.is_ascii() {
        if p.name.contains('\'') || p.name.contains('.') {
            format!("\"{}\" <{}>", p.name, p.address())
        } else {
            format!("{} <{}>", p.name, p.address())
        }
    } else {
        format!("{} <{}>", mime_gen::encoded_words(p.name, b), p.address())
    }
}

fn subject_header(subject: &str, b: bool) -> String {
    if subject.is_ascii() {
        mime_gen::header("Subject", subject)
    } else {
        mime_gen::header("Subject", &mime_gen::encoded_words(subject, b))
    }
}

/// How many headers an email carries: fewer for the tiniest sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Full,
    Reduced,
    Minimal,
}

/// Writes the top-level headers (without the MIME ones, which the body adds) and returns whether
/// a `Subject` was written.
fn top_headers(d: &mut Draft, m: &Meta, level: Level) -> bool {
    d.push(mime_gen::header("Date", &m.date));
    if level == Level::Minimal {
        d.push(mime_gen::header("From", &m.from.address()));
        d.push(mime_gen::header("Message-ID", &m.message_id));
        return false;
    }
    d.push(mime_gen::header("From", &mailbox(&m.from, m.names_b)));
    let list = |ps: &[Person]| {
        ps.iter()
            .map(|p| mailbox(p, m.names_b))
            .collect::<Vec<_>>()
            .join(", ")
    };
    d.push(mime_gen::header("To", &list(&m.to)));
    if level == Level::Full && !m.cc.is_empty() {
        d.push(mime_gen::header("Cc", &list(&m.cc)));
    }
    d.push(subject_header(&m.subject, m.subject_b));
    d.push(mime_gen::header("Message-ID", &m.message_id));
    if level == Level::Full {
        if let Some(irt) = &m.in_reply_to {
            d.push(mime_gen::header("In-Reply-To", irt));
            d.push(mime_gen::header("References", &m.references.join(" ")));
        }
        if let Some((name, value)) = m.mailer {
            d.push(mime_gen::header(name, value));
        }
    }
    d.push("MIME-Version: 1.0\r\n");
    true
}

fn boundary(rng: &mut ChaCha8Rng) -> String {
    format!("=_imapsim_{:016x}", rng.next_u64())
}

/// Part headers and body of a `text/plain` filler.
fn text_part(d: &mut Draft, qp: bool) {
    if qp {
        d.push("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n");
    } else {
        d.push("Content-Type: text/plain; charset=utf-8; format=flowed\r\nContent-Transfer-Encoding: 7bit\r\n\r\n");
    }
    d.filler(qp);
}

/// A `multipart/alternative` whose text part is the filler; `html_len` sizes the HTML part.
fn alternative(d: &mut Draft, rng: &mut ChaCha8Rng, qp: bool, html_len: usize) {
    let b = boundary(rng);
    d.push(format!(
        "Content-Type: multipart/alternative;\r\n boundary=\"{b}\"\r\n\r\n"
    ));
    d.push(format!("--{b}\r\n"));
    text_part(d, qp);
    d.push(format!("\r\n--{b}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"));
    d.push(mime_gen::html(rng, html_len));
    d.push(format!("\r\n--{b}--\r\n"));
}

/// A forwarded message (the body of a `message/rfc822` part): its own headers and a small body.
fn forwarded(rng: &mut ChaCha8Rng, seed: u64, index: u64, text_len: usize) -> Vec<u8> {
    // The forwarded email is an older message of another thread of the same seed.
    let m = meta(seed ^ 0x5eed_f0e0, index);
    let mut d = Draft::default();
    top_headers(&mut d, &m, Level::Reduced);
    if rng.gen_bool(0.5) {
        alternative(&mut d, rng, false, text_len);
    } else {
        text_part(&mut d, false);
    }
    let fixed = d.fixed_len();
    d.render(rng, fixed + text_len as u64)
        .expect("the filler absorbs any length")
}

/// Parameters of one attempt at building an email.
#[derive(Debug, Clone, Copy)]
struct Plan {
    shape: Shape,
    level: Level,
    /// Target of the secondary parts (HTML, forwarded message), bytes.
    extra: usize,
    /// Target of the text filler when attachments absorb the rest, bytes.
    text: u64,
}

/// Builds the draft of a plan; `None` if it cannot reach `size`.
fn draft(
    plan: Plan,
    m: &Meta,
    rng: &mut ChaCha8Rng,
    seed: u64,
    index: u64,
    size: u64,
) -> Option<(Draft, bool)> {
    let mut d = Draft::default();
    let has_subject = top_headers(&mut d, m, plan.level);
    let qp = rng.gen_bool(0.4);
    match plan.shape {
        Shape::PlainText if plan.level == Level::Minimal => {
            d.push("\r\n");
            d.filler(false);
        }
        Shape::PlainText => text_part(&mut d, false),
        Shape::PlainTextQuotedPrintable => text_part(&mut d, true),
        Shape::Alternative => alternative(&mut d, rng, qp, plan.extra),
        Shape::MixedAttachment | Shape::ForwardedMessage => {
            let b = boundary(rng);
            d.push(format!(
                "Content-Type: multipart/mixed;\r\n boundary=\"{b}\"\r\n\r\n"
            ));
            d.push("This is a multi-part message in MIME format.\r\n");
            d.push(format!("--{b}\r\n"));
            if plan.shape == Shape::MixedAttachment && rng.gen_bool(0.5) {
                alternative(&mut d, rng, qp, plan.extra);
            } else {
                text_part(&mut d, qp);
            }
            let attachments = match plan.shape {
                Shape::ForwardedMessage => {
                    d.push(format!("\r\n--{b}\r\nContent-Type: message/rfc822\r\n"));
                    if rng.gen_bool(0.5) {
                        d.push("Content-Disposition: inline\r\n\r\n");
                    } else {
                        d.push(
                            "Content-Disposition: attachment; filename=\"forwarded.eml\"\r\n\r\n",
                        );
                    }
                    d.push(forwarded(rng, seed, index, plan.extra));
                    usize::from(size > LARGE_SIZE)
                }
                _ => {
                    if size > 16 * 1024 && rng.gen_bool(0.3) {
                        2
                    } else {
                        1
                    }
                }
            };
            let mut handles = Vec::new();
            for _ in 0..attachments {
                let kind = *ATTACHMENT_KINDS.choose(rng).expect("kinds are not empty");
                let name = format!(
                    "{}-{}.{}",
                    mime_gen::word(rng, true),
                    rng.gen_range(1..100),
                    kind.ext
                );
                d.push(format!(
                    "\r\n--{b}\r\nContent-Type: {}; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n",
                    kind.mime
                ));
                handles.push(d.attachment(kind));
            }
            d.push(format!("\r\n--{b}--\r\n"));
            // Size the attachments: all but the last are small; the last takes what the text leaves.
            let mut budget = size.checked_sub(d.fixed_len() + plan.text)?;
            if let Some((&last, firsts)) = handles.split_last() {
                for &h in firsts {
                    let raw =
                        mime_gen::max_raw_for_base64(budget / 4).min(rng.gen_range(1024..30_000));
                    d.set_attachment(h, raw);
                    budget -= mime_gen::base64_len(raw);
                }
                let raw = mime_gen::max_raw_for_base64(budget);
                if raw < 512 {
                    return None;
                }
                d.set_attachment(last, raw);
            }
        }
    }
    (d.fixed_len() <= size).then_some((d, has_subject))
}

/// The shape this email aims for, from its size and seed.
fn choose_shape(rng: &mut ChaCha8Rng, size: u64) -> Shape {
    let r = rng.gen_range(0..100);
    if size > LARGE_SIZE {
        if r < 80 {
            Shape::MixedAttachment
        } else {
            Shape::ForwardedMessage
        }
    } else if size < 2_000 {
        match r {
            0..=39 => Shape::PlainText,
            40..=79 => Shape::PlainTextQuotedPrintable,
            _ => Shape::Alternative,
        }
    } else {
        match r {
            0..=24 => Shape::PlainText,
            25..=39 => Shape::PlainTextQuotedPrintable,
            40..=69 => Shape::Alternative,
            70..=84 => Shape::ForwardedMessage,
            _ => Shape::MixedAttachment,
        }
    }
}

/// Email number `index` of the set generated from `seed`, exactly `size` bytes.
pub fn try_email(seed: u64, index: usize, size: u64) -> Result<Email, DatasetError> {
    if size < MIN_SIZE {
        return Err(DatasetError::TooSmall {
            size,
            min: MIN_SIZE,
        });
    }
    if usize::try_from(size).is_err() {
        return Err(DatasetError::TooLarge { size });
    }
    let index = index as u64;
    let m = meta(seed, index);
    let mut rng = rng_for(seed, index, Purpose::Body);
    let shape = choose_shape(&mut rng, size);
    let extra = rng.gen_range(300..4_000);
    let text = rng.gen_range(200..4_000);
    let fallback = if rng.gen_bool(0.5) {
        Shape::PlainText
    } else {
        Shape::PlainTextQuotedPrintable
    };
    let plans = [
        Plan {
            shape,
            level: Level::Full,
            extra,
            text,
        },
        Plan {
            shape,
            level: Level::Full,
            extra: 200,
            text: 50,
        },
        Plan {
            shape: fallback,
            level: Level::Full,
            extra,
            text,
        },
        Plan {
            shape: Shape::PlainText,
            level: Level::Reduced,
            extra,
            text,
        },
        Plan {
            shape: Shape::PlainText,
            level: Level::Minimal,
            extra,
            text,
        },
    ];
    for plan in plans {
        if let Some((d, has_subject)) = draft(plan, &m, &mut rng, seed, index, size) {
            let bytes = d
                .render(&mut rng, size)
                .expect("draft() checked that the size is reachable");
            return Ok(Email {
                bytes,
                shape: plan.shape,
                subject: if has_subject {
                    m.subject.clone()
                } else {
                    String::new()
                },
                from: m.from.address(),
                message_id: m.message_id.clone(),
                date: m.date.clone(),
            });
        }
    }
    // MIN_SIZE is chosen so that the minimal plan always fits (tested over many seeds).
    unreachable!("the minimal plan fits any size >= MIN_SIZE ({size} bytes asked)")
}

/// Email number `index` of the set generated from `seed`, exactly `size` bytes.
///
/// # Panics
/// If `size` is below [`MIN_SIZE`] (every recorded size is above it); see [`try_email`].
pub fn email(seed: u64, index: usize, size: u64) -> Email {
    match try_email(seed, index, size) {
        Ok(e) => e,
        Err(e) => panic!("{e}"),
    }
}

/// The emails of `sizes`, in order, from `seed` (`email(seed, i, sizes[i])`).
///
/// # Panics
/// If a size is below [`MIN_SIZE`].
pub fn generate(seed: u64, sizes: &[u64]) -> Vec<Email> {
    sizes
        .iter()
        .enumerate()
        .map(|(i, &s)| email(seed, i, s))
        .collect()
}

/// The seed of copy `copy` of a scaled set: copy 0 uses `seed` itself.
pub fn copy_seed(seed: u64, copy: usize) -> u64 {
    if copy == 0 {
        seed
    } else {
        rng_for(seed, copy as u64, Purpose::Copy).next_u64()
    }
}

/// `sizes` repeated `factor` times ("x10": 1k emails from the 100 recorded sizes), one email at a
/// time. Copy `c` (0-based) yields `email(copy_seed(seed, c), i, sizes[i])` for each `i` in order,
/// so copy 0 equals [`generate`]`(seed, sizes)`, every copy has its own Message-IDs, subjects and
/// bodies, and threads (In-Reply-To / References) stay within a copy. Item `k` of the iterator is
/// copy `k / sizes.len()`, email `k % sizes.len()`. Never holds more than one email.
pub fn scaled(seed: u64, sizes: &[u64], factor: usize) -> Scaled<'_> {
    Scaled {
        seed,
        sizes,
        factor,
        next: 0,
    }
}

/// The iterator of [`scaled`].
#[derive(Debug, Clone)]
pub struct Scaled<'a> {
    seed: u64,
    sizes: &'a [u64],
    factor: usize,
    next: usize,
}

impl Iterator for Scaled<'_> {
    type Item = Email;

    fn next(&mut self) -> Option<Email> {
        let total = self.sizes.len() * self.factor;
        if self.next >= total {
            return None;
        }
        let copy = self.next / self.sizes.len();
        let i = self.next % self.sizes.len();
        self.next += 1;
        Some(email(copy_seed(self.seed, copy), i, self.sizes[i]))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.sizes.len() * self.factor).saturating_sub(self.next);
        (left, Some(left))
    }
}

impl ExactSizeIterator for Scaled<'_> {}
