//! The scanner's own cases: boundaries, header blocks and envelope fields as Dovecot reads them.

use super::*;

fn scan(msg: &[u8]) -> MessageMeta {
    let mut s = Scanner::new();
    s.feed(msg);
    s.finish()
}

fn children(meta: &MessageMeta) -> &[Part] {
    match &meta.root.kind {
        Kind::Multipart(c) => c,
        other => panic!("multipart expected, got {other:?}"),
    }
}

#[test]
fn line_break_before_a_boundary_belongs_to_the_boundary() {
    let meta =
        scan(b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nab\r\ncd\r\n--b--\r\n");
    let part = &children(&meta)[0];
    assert_eq!(part.body_end - part.body_start, 6);
    assert_eq!(part.lines, 1);
}

#[test]
fn blank_line_before_a_parent_boundary_leaves_an_empty_parts_header() {
    let msg = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n--b\r\nX: y\r\n\r\n\r\n--b--\r\n";
    let meta = scan(msg);
    let (first, second) = (&children(&meta)[0], &children(&meta)[1]);
    let mime = |p: &Part| &msg[p.header_start as usize..p.body_start as usize];
    assert_eq!(mime(first), b"Content-Type: text/plain\r\n");
    assert_eq!((first.body_start, first.lines), (first.body_end, 0));
    // An empty body followed by the boundary's own line break: the blank line stays.
    assert_eq!(mime(second), b"X: y\r\n\r\n");
    assert_eq!(second.body_start, second.body_end);
}

#[test]
fn boundary_in_a_header_ends_that_header() {
    let meta = scan(b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n--b--\r\n");
    let part = &children(&meta)[0];
    assert_eq!(part.body_start, part.body_end);
    assert_eq!(part.content.subtype.as_deref(), Some(&b"html"[..]));
}

#[test]
fn longest_matching_boundary_wins() {
    let meta = scan(
        b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: multipart/mixed; boundary=ab\r\n\r\n--ab\r\n\r\nx\r\n--ab--\r\n--a--\r\n",
    );
    let Kind::Multipart(inner) = &children(&meta)[0].kind else {
        panic!("nested multipart expected")
    };
    assert_eq!(inner.len(), 1);
    assert_eq!(inner[0].body_end - inner[0].body_start, 1);
}

#[test]
fn content_headers_without_mime_version_or_type_are_ignored() {
    let meta = scan(b"Content-Transfer-Encoding: base64\r\n\r\nQQ==\r\n");
    assert_eq!(meta.root.content.encoding, None);
}

#[test]
fn digest_children_default_to_message_rfc822() {
    let meta = scan(b"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: s\r\n\r\nbody\r\n--d--\r\n");
    let Kind::Message(m) = &children(&meta)[0].kind else {
        panic!("message/rfc822 expected")
    };
    assert_eq!(m.envelope.subject.as_deref(), Some(&b"s"[..]));
    assert_eq!(m.part.body_end - m.part.body_start, 4);
}

#[test]
fn header_is_kept_and_unfolded_values_reach_the_envelope() {
    let meta = scan(b"Subject: a\r\n b\r\nFrom: x@y\r\n\r\nbody");
    assert_eq!(meta.header, b"Subject: a\r\n b\r\nFrom: x@y\r\n\r\n");
    assert_eq!(meta.envelope.subject.as_deref(), Some(&b"a\n b"[..]));
    assert_eq!(meta.root.body_start, 29);
    assert_eq!(meta.size, 33);
}
