//! Tests of the mailbox dataset generator: exact sizes, determinism, RFC 5322 / MIME validity
//! checked with an independent parser (mailparse), and shapes.

use mailparse::{DispositionType, MailHeaderMap as _, ParsedMail};
use traces::dataset::{self, Email, Shape, MIN_SIZE, PEOPLE};

/// Every line ends in CRLF (no bare CR or LF) and no line exceeds RFC 5322's 998 characters.
fn assert_crlf_lines(e: &Email) {
    let b = &e.bytes;
    for (i, &c) in b.iter().enumerate() {
        if c == b'\n' {
            assert!(
                i > 0 && b[i - 1] == b'\r',
                "bare LF at {i} in {}",
                e.message_id
            );
        }
        if c == b'\r' {
            assert_eq!(
                b.get(i + 1),
                Some(&b'\n'),
                "bare CR at {i} in {}",
                e.message_id
            );
        }
    }
    for line in b.split(|&c| c == b'\n') {
        assert!(
            line.len() <= 1000,
            "line of {} bytes in {}",
            line.len(),
            e.message_id
        );
    }
}

fn attachment_parts<'a>(p: &'a ParsedMail<'a>) -> Vec<&'a ParsedMail<'a>> {
    p.parts()
        .filter(|s| s.get_content_disposition().disposition == DispositionType::Attachment)
        .filter(|s| s.ctype.mimetype != "message/rfc822")
        .collect()
}

/// Parses `e` with mailparse and checks headers and structure against what the generator says.
fn assert_parses_to_its_shape(e: &Email) {
    assert_crlf_lines(e);
    let p = mailparse::parse_mail(&e.bytes).expect("generated email parses");
    let h = &p.headers;
    assert_eq!(h.get_first_value("Date").as_deref(), Some(e.date.as_str()));
    assert!(mailparse::dateparse(&e.date).is_ok(), "date {}", e.date);
    assert_eq!(
        h.get_first_value("Message-ID").as_deref(),
        Some(e.message_id.as_str())
    );
    let from = h.get_first_value("From").expect("From header");
    let addrs = mailparse::addrparse(&from).expect("From parses as an address list");
    assert_eq!(
        addrs.extract_single_info().map(|i| i.addr),
        Some(e.from.clone())
    );
    if e.subject.is_empty() {
        assert_eq!(h.get_first_value("Subject"), None);
    } else {
        assert_eq!(
            h.get_first_value("Subject").as_deref(),
            Some(e.subject.as_str())
        );
    }
    match e.shape {
        Shape::PlainText => {
            assert_eq!(p.ctype.mimetype, "text/plain");
            assert!(p.subparts.is_empty());
            assert!(p.get_body().expect("7bit body").is_ascii());
        }
        Shape::PlainTextQuotedPrintable => {
            assert_eq!(p.ctype.mimetype, "text/plain");
            assert_eq!(
                h.get_first_value("Content-Transfer-Encoding").as_deref(),
                Some("quoted-printable")
            );
            p.get_body().expect("quoted-printable body decodes");
        }
        Shape::Alternative => {
            assert_eq!(p.ctype.mimetype, "multipart/alternative");
            let types: Vec<_> = p
                .subparts
                .iter()
                .map(|s| s.ctype.mimetype.as_str())
                .collect();
            assert_eq!(types, ["text/plain", "text/html"]);
            assert!(p.subparts[1].get_body().expect("html").contains("<html>"));
        }
        Shape::MixedAttachment => {
            assert_eq!(p.ctype.mimetype, "multipart/mixed");
            assert!(p.subparts.len() >= 2);
            let first = p.subparts[0].ctype.mimetype.as_str();
            assert!(
                first == "text/plain" || first == "multipart/alternative",
                "{first}"
            );
            let atts = attachment_parts(&p);
            assert!(!atts.is_empty(), "an attachment part");
            for a in atts {
                assert_eq!(
                    a.headers
                        .get_first_value("Content-Transfer-Encoding")
                        .as_deref(),
                    Some("base64")
                );
                assert!(a.get_body_raw().expect("base64 decodes").len() >= 512);
                assert!(a.get_content_disposition().params.contains_key("filename"));
            }
        }
        Shape::ForwardedMessage => {
            assert_eq!(p.ctype.mimetype, "multipart/mixed");
            assert_eq!(p.subparts[0].ctype.mimetype, "text/plain");
            let fwd = p
                .subparts
                .iter()
                .find(|s| s.ctype.mimetype == "message/rfc822")
                .expect("a message/rfc822 part");
            let inner_bytes = fwd.get_body_raw().expect("rfc822 body");
            let inner = mailparse::parse_mail(&inner_bytes).expect("forwarded message parses");
            assert!(inner.headers.get_first_value("From").is_some());
            assert!(inner.headers.get_first_value("Message-ID").is_some());
            if e.bytes.len() > 64 * 1024 {
                assert!(
                    !attachment_parts(&p).is_empty(),
                    "large forwards carry an attachment"
                );
            }
        }
    }
}

#[test]
fn recorded_sizes_are_the_100_dataset_rows() {
    let sizes = dataset::recorded_sizes();
    assert_eq!(sizes.len(), 100);
    assert_eq!(sizes.iter().sum::<u64>(), 23_594_512);
    assert_eq!(&sizes[..3], &[1197, 669, 2_446_863]);
    assert!(sizes.iter().all(|&s| s >= MIN_SIZE));
}

#[test]
fn personal_sizes_are_the_2327_personal_rows() {
    let sizes = dataset::personal_sizes();
    assert_eq!(sizes.len(), 2327);
    assert_eq!(&sizes[..2], &[10_988, 27_704]);
    assert!(sizes.iter().all(|&s| s >= MIN_SIZE));
}

#[test]
fn every_recorded_email_has_its_exact_size_and_parses_to_its_shape() {
    let sizes = dataset::recorded_sizes();
    for seed in [1, 2] {
        let emails = dataset::generate(seed, &sizes);
        for (e, &size) in emails.iter().zip(&sizes) {
            assert_eq!(e.bytes.len() as u64, size, "{}", e.message_id);
            assert_parses_to_its_shape(e);
        }
        // Every shape occurs in the recorded set, and the big emails carry attachments.
        for shape in [
            Shape::PlainText,
            Shape::PlainTextQuotedPrintable,
            Shape::Alternative,
            Shape::MixedAttachment,
            Shape::ForwardedMessage,
        ] {
            assert!(
                emails.iter().any(|e| e.shape == shape),
                "seed {seed}: no {shape:?}"
            );
        }
        for e in emails.iter().filter(|e| e.bytes.len() > 1_000_000) {
            assert!(matches!(
                e.shape,
                Shape::MixedAttachment | Shape::ForwardedMessage
            ));
        }
    }
}

#[test]
fn personal_sample_has_exact_sizes_and_parses() {
    let sizes = dataset::personal_sizes();
    let indexed = || sizes.iter().copied().enumerate();
    let max = indexed().max_by_key(|&(_, s)| s).expect("not empty");
    let min = indexed().min_by_key(|&(_, s)| s).expect("not empty");
    let sample = indexed().step_by(23).chain([max, min]);
    for (i, size) in sample {
        let e = dataset::email(7, i, size);
        assert_eq!(e.bytes.len() as u64, size);
        assert_parses_to_its_shape(&e);
    }
}

#[test]
fn small_sizes_down_to_min_size_are_valid_messages() {
    for seed in 0..4 {
        for size in (MIN_SIZE..MIN_SIZE + 900).step_by(7) {
            let e = dataset::email(seed, (size % 40) as usize, size);
            assert_eq!(e.bytes.len() as u64, size);
            assert_parses_to_its_shape(&e);
        }
    }
    assert_eq!(
        dataset::try_email(0, 0, MIN_SIZE - 1),
        Err(dataset::DatasetError::TooSmall {
            size: MIN_SIZE - 1,
            min: MIN_SIZE
        })
    );
}

#[test]
fn same_seed_gives_identical_bytes_and_other_seed_differs() {
    let sizes = dataset::recorded_sizes();
    let sizes = &sizes[..30];
    let a = dataset::generate(42, sizes);
    let b = dataset::generate(42, sizes);
    let c = dataset::generate(43, sizes);
    assert_eq!(a, b);
    for (x, y) in a.iter().zip(&c) {
        assert_ne!(x.bytes, y.bytes);
        assert_ne!(x.message_id, y.message_id);
    }
    assert_eq!(
        dataset::email(42, 5, sizes[5]),
        a[5],
        "one email at a time equals the set's"
    );
}

#[test]
fn headers_come_from_the_pool_and_replies_thread_within_the_set() {
    let sizes = dataset::recorded_sizes();
    let emails = dataset::generate(3, &sizes);
    let ids: Vec<&str> = emails.iter().map(|e| e.message_id.as_str()).collect();
    let mut replies = 0;
    let mut encoded_subjects = 0;
    for (i, e) in emails.iter().enumerate() {
        assert!(PEOPLE.iter().any(|p| p.address() == e.from));
        let p = mailparse::parse_mail(&e.bytes).expect("parses");
        let raw_subject =
            String::from_utf8_lossy(&e.bytes[..p.get_body_encoded_offset()]).into_owned();
        if raw_subject.contains("=?UTF-8?B?") || raw_subject.contains("=?UTF-8?Q?") {
            encoded_subjects += 1;
        }
        if let Some(irt) = p.headers.get_first_value("In-Reply-To") {
            replies += 1;
            let parent = ids
                .iter()
                .position(|id| *id == irt)
                .expect("parent is in the set");
            assert!(parent < i);
            assert!(e.subject.starts_with("Re: "));
            let refs = p.headers.get_first_value("References").expect("References");
            assert!(refs.ends_with(&irt));
        }
    }
    assert!(replies >= 10, "{replies} replies");
    assert!(
        encoded_subjects >= 10,
        "{encoded_subjects} emails with encoded words"
    );
}

trait BodyOffset {
    fn get_body_encoded_offset(&self) -> usize;
}

impl BodyOffset for ParsedMail<'_> {
    /// Where the header block ends: the first blank line.
    fn get_body_encoded_offset(&self) -> usize {
        let raw = self.raw_bytes;
        raw.windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(raw.len(), |p| p + 4)
    }
}

#[test]
fn scaled_x10_repeats_the_sizes_with_a_seed_per_copy() {
    let sizes = dataset::recorded_sizes();
    let small: Vec<u64> = sizes
        .iter()
        .copied()
        .filter(|&s| s < 100_000)
        .take(20)
        .collect();
    let it = dataset::scaled(9, &small, 10);
    assert_eq!(it.len(), 200);
    let all: Vec<Email> = it.collect();
    assert_eq!(all.len(), 200);
    assert_eq!(
        &all[..20],
        &dataset::generate(9, &small)[..],
        "copy 0 is generate(seed)"
    );
    for (k, e) in all.iter().enumerate() {
        assert_eq!(e.bytes.len() as u64, small[k % 20]);
    }
    let mut ids: Vec<&str> = all.iter().map(|e| e.message_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 200, "every copy has its own Message-IDs");
    assert_eq!(
        all[45],
        dataset::email(dataset::copy_seed(9, 2), 5, small[5])
    );
}
