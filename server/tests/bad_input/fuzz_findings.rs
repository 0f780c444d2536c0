//! What the fuzz targets found, as fixed cases, and a replay of their committed corpus through
//! the fuzz harnesses themselves.

use crate::common;
use crate::harness::{self, Answer, Status};
use crate::raw::{limits, session_in, End, State};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailbox_names_in_invalid_modified_utf7_get_no_or_bad_and_no_panic() {
    // Found by the session fuzz target (fuzz/corpus/session/regression-utf7-invalid-base64): the
    // utf7-imap decoder panicked on a shifted run that is not base64, killing the session.
    let addr = common::start(limits()).await.imap;
    let mut c = session_in(addr, State::Authenticated).await;
    for (i, command) in [
        "RENAME Caf&A[Ok- Tea",
        "SELECT &A-",
        "CREATE &AOl-",
        "STATUS &2AA- (MESSAGES)",
        "SUBSCRIBE &,,,-",
        "DELETE \"&A[\"",
    ]
    .iter()
    .enumerate()
    {
        let end = c.run(&format!("u{i}"), command).await;
        assert!(
            matches!(end, End::Done(Status::No | Status::Bad)),
            "{command}: {end:?}"
        );
    }
    // A pattern that does not decode is matched as it is: nothing.
    assert_eq!(
        c.run("l", "LIST \"\" \"&A[Ok-*\"").await,
        End::Done(Status::Ok)
    );
    assert!(c.usable_or_closed_with_bye().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extended_list_with_an_invalid_tag_gets_an_untagged_bad() {
    // Found by the garbled-command property: the fallback LIST parser took `x{` for a tag and
    // answered `x{ OK`, which no client can parse.
    let addr = common::start(limits()).await.imap;
    let mut c = session_in(addr, State::Authenticated).await;
    c.send(b"x{ LIST (SUBSCRIBED) \"\" *\r\n").await;
    assert_eq!(c.read_until(None).await, End::Quiet);
    assert_eq!(c.seen.last(), Some(&Answer::Status(Status::Bad)));
    assert!(c.usable_or_closed_with_bye().await);
}

/// The committed seeds and minimised findings of one fuzz target, by file name.
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a directory entry").path();
            let name = path
                .file_name()
                .expect("a file name")
                .to_string_lossy()
                .into();
            (name, std::fs::read(&path).expect("a readable corpus file"))
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "{} holds only {} inputs",
        dir.display(),
        files.len()
    );
    files
}

#[test]
fn the_command_decoder_fuzz_corpus_replays_cleanly() {
    for (name, data) in corpus("command_decoder") {
        let result = std::panic::catch_unwind(|| harness::decode_commands(&data));
        assert!(result.is_ok(), "fuzz/corpus/command_decoder/{name} fails");
    }
}

#[test]
fn the_session_fuzz_corpus_replays_cleanly() {
    for (name, data) in corpus("session") {
        let result = std::panic::catch_unwind(|| harness::run_session(&data));
        assert!(result.is_ok(), "fuzz/corpus/session/{name} fails");
    }
}
