//! Conversion of the stored metadata to imap-types values: BODY, BODYSTRUCTURE and ENVELOPE.
//!
//! Strings are written the way Dovecot writes them: subjects and display names with whitespace
//! runs collapsed (its "for humans" form), other header values with line breaks removed, NUL bytes
//! replaced by U+FFFD, media types in their original case, `"7bit"` when no encoding is given and a
//! `charset` of `us-ascii` added to text parts that name none.

use imap_types::body::{
    BasicFields, Body, BodyStructure, Disposition, Language, Location, MultiPartExtensionData,
    SinglePartExtensionData, SpecificFields,
};
use imap_types::core::{IString, Literal, NString, Quoted, Vec1};
use imap_types::envelope::{Address as ImapAddress, Envelope as ImapEnvelope};

use super::header::{eq_ic, NUL_REPLACEMENT};
use super::meta::{Address, Content, Envelope, Kind, MessageMeta, Part};

impl MessageMeta {
    /// BODYSTRUCTURE (`extended`) or BODY (not `extended`) of the message.
    pub fn bodystructure(&self, extended: bool) -> BodyStructure<'static> {
        part_structure(&self.root, false, extended)
    }

    /// ENVELOPE of the message.
    pub fn envelope(&self) -> ImapEnvelope<'static> {
        envelope(&self.envelope)
    }
}

fn no_nul(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    for &b in v {
        if b == 0 {
            out.extend_from_slice(NUL_REPLACEMENT);
        } else {
            out.push(b);
        }
    }
    out
}

/// An IMAP string: quoted when it can be, a literal otherwise.
fn istring(v: &[u8]) -> IString<'static> {
    let v = no_nul(v);
    if let Ok(q) = Quoted::try_from(v.clone()) {
        return IString::Quoted(q);
    }
    match Literal::try_from(v) {
        Ok(l) => IString::Literal(l),
        // Unreachable: a literal only refuses NUL, removed above.
        Err(_) => IString::Quoted(Quoted::try_from("").expect("an empty quoted string is valid")),
    }
}

fn nstring(v: Option<&[u8]>) -> NString<'static> {
    NString(v.map(istring))
}

/// Dovecot's `imap_append_nstring_nolf`: line breaks removed, a space kept between lines.
fn nolf(v: &[u8]) -> Vec<u8> {
    let v = no_nul(v);
    let mut out = Vec::with_capacity(v.len());
    for (i, &b) in v.iter().enumerate() {
        if b != b'\r' && b != b'\n' {
            out.push(b);
        } else if !matches!(v.get(i + 1), None | Some(b' ' | b'\t' | b'\r' | b'\n')) {
            out.push(b' ');
        }
    }
    out
}

fn nstring_nolf(v: Option<&Vec<u8>>) -> NString<'static> {
    NString(v.map(|v| istring(&nolf(v))))
}

/// Dovecot's `imap_append_string_for_humans`: whitespace runs become one space, trimmed.
fn for_humans(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut last_lwsp = true;
    for &b in v {
        match b {
            0 => {
                out.push(0x80);
                last_lwsp = false;
            }
            b'\r' | b'\n' | b'\t' | b' ' => {
                if !last_lwsp {
                    out.push(b' ');
                }
                last_lwsp = true;
            }
            _ => {
                out.push(b);
                last_lwsp = false;
            }
        }
    }
    if last_lwsp && out.last() == Some(&b' ') {
        out.pop();
    }
    out
}

fn params(
    list: &[(Vec<u8>, Vec<u8>)],
    default_charset: bool,
) -> Vec<(IString<'static>, IString<'static>)> {
    let mut out: Vec<_> = list.iter().map(|(k, v)| (istring(k), istring(v))).collect();
    if default_charset && !list.iter().any(|(k, _)| eq_ic(k, b"charset")) {
        out.push((istring(b"charset"), istring(b"us-ascii")));
    }
    out
}

fn disposition_tail(c: &Content) -> Disposition<'static> {
    Disposition {
        disposition: c
            .disposition
            .as_ref()
            .map(|d| (istring(d), params(&c.disposition_params, false))),
        tail: Some(Language {
            language: c.language.iter().map(|l| istring(l)).collect(),
            tail: Some(Location {
                location: nstring_nolf(c.location.as_ref()),
                extensions: Vec::new(),
            }),
        }),
    }
}

fn to_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// The 0-length text/plain Dovecot writes for a multipart without parts.
fn empty_text(extended: bool) -> BodyStructure<'static> {
    BodyStructure::Single {
        body: Body {
            basic: BasicFields {
                parameter_list: params(&[], true),
                id: NString(None),
                description: NString(None),
                content_transfer_encoding: istring(b"7bit"),
                size: 0,
            },
            specific: SpecificFields::Text {
                subtype: istring(b"plain"),
                number_of_lines: 0,
            },
        },
        extension_data: extended.then(|| SinglePartExtensionData {
            md5: NString(None),
            tail: Some(disposition_tail(&Content::default())),
        }),
    }
}

fn part_structure(part: &Part, parent_digest: bool, extended: bool) -> BodyStructure<'static> {
    let c = &part.content;
    if let Kind::Multipart(children) = &part.kind {
        let digest = c.subtype.as_deref().is_some_and(|s| eq_ic(s, b"digest"));
        let bodies: Vec<_> = children
            .iter()
            .map(|p| part_structure(p, digest, extended))
            .collect();
        let bodies = Vec1::try_from(bodies).unwrap_or_else(|_| Vec1::from(empty_text(extended)));
        return BodyStructure::Multi {
            bodies,
            subtype: istring(c.subtype.as_deref().unwrap_or_default()),
            extension_data: extended.then(|| MultiPartExtensionData {
                parameter_list: params(&c.params, false),
                tail: Some(disposition_tail(c)),
            }),
        };
    }
    let size = to_u32(part.body_end.saturating_sub(part.body_start));
    let lines = to_u32(part.lines);
    let (specific, text) = match &part.kind {
        Kind::Message(m) => (
            SpecificFields::Message {
                envelope: Box::new(envelope(&m.envelope)),
                body_structure: Box::new(part_structure(&m.part, false, extended)),
                number_of_lines: lines,
            },
            false,
        ),
        _ => match (&c.media_type, &c.subtype) {
            (Some(t), Some(s))
                if (eq_ic(t, b"message") && eq_ic(s, b"rfc822")) || eq_ic(t, b"multipart") =>
            {
                // A multipart or message/rfc822 beyond the bounds: opaque.
                (
                    SpecificFields::Basic {
                        r#type: istring(b"application"),
                        subtype: istring(b"octet-stream"),
                    },
                    false,
                )
            }
            (None, _) if parent_digest => (
                SpecificFields::Basic {
                    r#type: istring(b"application"),
                    subtype: istring(b"octet-stream"),
                },
                false,
            ),
            (None, _) => (
                SpecificFields::Text {
                    subtype: istring(b"plain"),
                    number_of_lines: lines,
                },
                true,
            ),
            (Some(t), s) if eq_ic(t, b"text") => (
                SpecificFields::Text {
                    subtype: istring(s.as_deref().unwrap_or_default()),
                    number_of_lines: lines,
                },
                true,
            ),
            (Some(t), s) => (
                SpecificFields::Basic {
                    r#type: istring(t),
                    subtype: istring(s.as_deref().unwrap_or_default()),
                },
                false,
            ),
        },
    };
    let basic = BasicFields {
        parameter_list: params(&c.params, text),
        id: nstring_nolf(c.id.as_ref()),
        description: nstring_nolf(c.description.as_ref()),
        content_transfer_encoding: istring(c.encoding.as_deref().unwrap_or(b"7bit")),
        size,
    };
    BodyStructure::Single {
        body: Body { basic, specific },
        extension_data: extended.then(|| SinglePartExtensionData {
            md5: nstring_nolf(c.md5.as_ref()),
            tail: Some(disposition_tail(c)),
        }),
    }
}

fn addresses(list: &[Address]) -> Vec<ImapAddress<'static>> {
    list.iter()
        .map(|a| ImapAddress {
            name: NString(a.name.as_deref().map(|n| istring(&for_humans(&no_nul(n))))),
            adl: nstring(a.route.as_deref()),
            mailbox: nstring(a.mailbox.as_deref()),
            host: nstring(a.domain.as_deref()),
        })
        .collect()
}

fn envelope(e: &Envelope) -> ImapEnvelope<'static> {
    let or_from = |v: &Vec<Address>| {
        if v.is_empty() {
            addresses(&e.from)
        } else {
            addresses(v)
        }
    };
    ImapEnvelope {
        date: nstring_nolf(e.date.as_ref()),
        subject: NString(
            e.subject
                .as_deref()
                .map(|s| istring(&for_humans(&no_nul(s)))),
        ),
        from: addresses(&e.from),
        sender: or_from(&e.sender),
        reply_to: or_from(&e.reply_to),
        to: addresses(&e.to),
        cc: addresses(&e.cc),
        bcc: addresses(&e.bcc),
        in_reply_to: nstring_nolf(e.in_reply_to.as_ref()),
        message_id: nstring_nolf(e.message_id.as_ref()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn for_humans_collapses_and_trims_whitespace() {
        assert_eq!(for_humans(b"  a\t\n b  "), b"a b");
        assert_eq!(for_humans(b"   "), b"");
    }

    #[test]
    fn nolf_keeps_a_space_between_lines() {
        assert_eq!(nolf(b"a\nb"), b"a b");
        assert_eq!(nolf(b"a\n b"), b"a b");
    }

    #[test]
    fn istring_falls_back_to_literal_for_8bit() {
        assert!(matches!(istring("é".as_bytes()), IString::Literal(_)));
        assert!(matches!(istring(b"plain"), IString::Quoted(_)));
    }
}
