//! Parsers of the server's responses that workloads and checks read: counts (EXISTS, FETCH,
//! SEARCH, STATUS), response codes (APPENDUID, COPYUID) and the attributes of FETCH answers.

use imap_proto::rfc4315::UidSetMember;
use imap_proto::{AttributeValue, MailboxDatum, Response, ResponseCode, StatusAttribute};

use crate::client::Reply;
use std::collections::BTreeSet;

/// Canonical flag name: lowercase.
pub fn flag_key(flag: &str) -> String {
    flag.to_ascii_lowercase()
}

/// UIDs of a UID set.
pub fn uid_set(members: &[UidSetMember]) -> Vec<u32> {
    let mut uids = Vec::new();
    for member in members {
        match member {
            UidSetMember::Uid(u) => uids.push(*u),
            UidSetMember::UidRange(range) => uids.extend(range.clone()),
        }
    }
    uids
}

/// The UID of an `[APPENDUID v uid]` in a reply.
pub fn append_uid(reply: &Reply) -> Option<(u32, u32)> {
    reply.parsed().find_map(|r| {
        let outcome = match r {
            Response::Done { outcome, .. } | Response::Data { outcome, .. } => outcome,
            _ => return None,
        };
        match outcome.code {
            Some(ResponseCode::AppendUid(validity, uids)) => {
                uid_set(&uids).first().map(|u| (validity, *u))
            }
            _ => None,
        }
    })
}

/// The `[COPYUID v src dst]` in a reply, as (validity, source UIDs, destination UIDs).
pub fn copy_uid(reply: &Reply) -> Option<(u32, Vec<u32>, Vec<u32>)> {
    reply.parsed().find_map(|r| {
        let outcome = match r {
            Response::Done { outcome, .. } | Response::Data { outcome, .. } => outcome,
            _ => return None,
        };
        match outcome.code {
            Some(ResponseCode::CopyUid(validity, src, dst)) => {
                Some((validity, uid_set(&src), uid_set(&dst)))
            }
            _ => None,
        }
    })
}

/// One FETCH response's items the checks use.
#[derive(Debug, Default)]
pub struct Fetched {
    /// Sequence number.
    pub seq: u32,
    /// UID item.
    pub uid: Option<u32>,
    /// FLAGS item, lowercase, without `\recent`.
    pub flags: Option<BTreeSet<String>>,
    /// MODSEQ item.
    pub modseq: Option<u64>,
    /// `BODY[]` data.
    pub body: Option<Vec<u8>>,
    /// RFC822.SIZE item.
    pub size: Option<u32>,
}

/// The FETCH responses of a reply.
pub fn fetched(reply: &Reply) -> Vec<Fetched> {
    let mut out = Vec::new();
    for response in reply.parsed() {
        let Response::Fetch(seq, attributes) = response else {
            continue;
        };
        let mut f = Fetched {
            seq,
            ..Fetched::default()
        };
        for attribute in attributes {
            match attribute {
                AttributeValue::Uid(u) => f.uid = Some(u),
                AttributeValue::Flags(flags) => {
                    f.flags = Some(
                        flags
                            .iter()
                            .map(|f| flag_key(f))
                            .filter(|f| f != "\\recent")
                            .collect(),
                    )
                }
                AttributeValue::ModSeq(m) => f.modseq = Some(m),
                AttributeValue::BodySection {
                    section: None,
                    index: None,
                    data,
                } => f.body = Some(data.map(|d| d.into_owned()).unwrap_or_default()),
                AttributeValue::Rfc822(data) => {
                    f.body = Some(data.map(|d| d.into_owned()).unwrap_or_default())
                }
                AttributeValue::Rfc822Size(s) => f.size = Some(s),
                _ => {}
            }
        }
        out.push(f);
    }
    out
}

/// UIDVALIDITY, HIGHESTMODSEQ and EXISTS of a SELECT reply.
pub fn select_figures(reply: &Reply) -> (Option<u32>, Option<u64>, Option<u32>) {
    let (mut validity, mut highest, mut exists) = (None, None, None);
    for response in reply.parsed() {
        match response {
            Response::MailboxData(MailboxDatum::Exists(n)) => exists = Some(n),
            Response::Data { outcome, .. } | Response::Done { outcome, .. } => match outcome.code {
                Some(ResponseCode::UidValidity(v)) => validity = Some(v),
                Some(ResponseCode::HighestModSeq(m)) => highest = Some(m),
                _ => {}
            },
            _ => {}
        }
    }
    (validity, highest, exists)
}

/// The EXISTS count in a reply, if any.
pub fn exists(reply: &Reply) -> Option<u32> {
    reply.parsed().find_map(|r| match r {
        Response::MailboxData(MailboxDatum::Exists(n)) => Some(n),
        _ => None,
    })
}

/// The count of a raw `* N EXISTS` response.
pub fn parse_exists(response: &[u8]) -> Option<u32> {
    match crate::client::parse_complete(response) {
        Some(Response::MailboxData(MailboxDatum::Exists(n))) => Some(n),
        _ => None,
    }
}

/// How many untagged FETCH responses a reply holds.
pub fn fetch_count(reply: &Reply) -> usize {
    reply
        .parsed()
        .filter(|r| matches!(r, Response::Fetch(..)))
        .count()
}

/// How many untagged responses of a reply `is` matches.
pub fn count(reply: &Reply, is: fn(&Response<'_>) -> bool) -> usize {
    reply.parsed().filter(|r| is(r)).count()
}

/// The numbers of a SEARCH answer.
pub fn search_hits(reply: &Reply) -> usize {
    reply
        .parsed()
        .map(|r| match r {
            Response::MailboxData(MailboxDatum::Search(ids)) => ids.len(),
            _ => 0,
        })
        .sum()
}

/// An attribute of a STATUS answer, picked by `pick`.
pub fn status_attribute(reply: &Reply, pick: fn(&StatusAttribute) -> Option<u32>) -> Option<u32> {
    reply.parsed().find_map(|r| match r {
        Response::MailboxData(MailboxDatum::Status { status, .. }) => status.iter().find_map(pick),
        _ => None,
    })
}

/// The MESSAGES count of a STATUS answer.
pub fn status_messages(reply: &Reply) -> Option<u32> {
    status_attribute(reply, |a| match a {
        StatusAttribute::Messages(n) => Some(*n),
        _ => None,
    })
}

/// Bytes of the body sections of a FETCH answer, all messages together.
pub fn body_section_bytes(reply: &Reply) -> u64 {
    reply
        .parsed()
        .map(|r| match r {
            Response::Fetch(_, attributes) => attributes
                .iter()
                .map(|a| match a {
                    AttributeValue::BodySection { data: Some(d), .. } => d.len() as u64,
                    _ => 0,
                })
                .sum::<u64>(),
            _ => 0,
        })
        .sum()
}
