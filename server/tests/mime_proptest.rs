//! Property tests of the streaming MIME scanner: arbitrary input never panics, chunking never
//! changes the result, and the answer always encodes.

use imap_codec::encode::Encoder;
use imap_codec::imap_types::core::Vec1;
use imap_codec::imap_types::fetch::MessageDataItem;
use imap_codec::imap_types::response::{Data, Response};
use imap_codec::ResponseCodec;
use proptest::prelude::*;
use server::mime::{Kind, MessageMeta, Part, Scanner};

/// Fragments that steer random messages into MIME structure.
const FRAGMENTS: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r",
    b"--",
    b"--b",
    b"--b--",
    b"--bb",
    b"Content-Type: multipart/mixed; boundary=b\r\n",
    b"Content-Type: multipart/digest; boundary=\"bb\"\r\n",
    b"Content-Type: message/rfc822\r\n",
    b"Content-Type: text/plain; charset*0*=utf-8''a; charset*1=b\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Disposition: attachment; filename=\"x\"\r\n",
    b"MIME-Version: 1.0\r\n",
    b"From: \"A\" <a@b>, (c) d@e, g: h@i;\r\n",
    b"Subject: =?utf-8?q?x?=\r\n",
    b" folded\r\n",
    b"\t",
    b"\0",
    b"\xff",
    b"x",
    b"(",
    b"\"",
];

fn message() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..600),
        proptest::collection::vec(proptest::sample::select(FRAGMENTS), 0..120)
            .prop_map(|v| v.concat()),
    ]
}

fn scan(msg: &[u8], cuts: &[usize]) -> MessageMeta {
    let mut s = Scanner::new();
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (msg.len() + 1)).collect();
    points.sort_unstable();
    let mut at = 0;
    for p in points {
        s.feed(&msg[at..p]);
        at = p;
    }
    s.feed(&msg[at..]);
    s.finish()
}

fn within(p: &Part, lo: u64, hi: u64) -> bool {
    let here = lo <= p.header_start
        && p.header_start <= p.body_start
        && p.body_start <= p.body_end
        && p.body_end <= hi;
    here && match &p.kind {
        Kind::Multipart(c) => c.iter().all(|c| within(c, p.body_start, p.body_end)),
        Kind::Message(m) => within(&m.part, p.body_start, p.body_end),
        Kind::Single => true,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn chunking_never_changes_the_result(msg in message(), cuts in proptest::collection::vec(any::<usize>(), 0..12)) {
        let whole = MessageMeta::from_bytes(&msg);
        prop_assert_eq!(scan(&msg, &cuts), whole.clone());
        let mut bytewise = Scanner::new();
        for b in &msg {
            bytewise.feed(std::slice::from_ref(b));
        }
        prop_assert_eq!(bytewise.finish(), whole);
    }

    #[test]
    fn any_input_gives_an_encodable_answer_inside_the_message(msg in message()) {
        let meta = MessageMeta::from_bytes(&msg);
        prop_assert_eq!(meta.size, msg.len() as u64);
        prop_assert!(within(&meta.root, 0, meta.size));
        let seq = std::num::NonZeroU32::new(1).expect("1 is not zero");
        for item in [
            MessageDataItem::BodyStructure(meta.bodystructure(true)),
            MessageDataItem::Body(meta.bodystructure(false)),
            MessageDataItem::Envelope(meta.envelope()),
        ] {
            let out = ResponseCodec::default().encode(&Response::Data(Data::Fetch { seq, items: Vec1::from(item) })).dump();
            prop_assert!(out.starts_with(b"* 1 FETCH (") && out.ends_with(b")\r\n"));
        }
    }
}
