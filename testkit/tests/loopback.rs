//! The kit itself: a started fixture greets, knows the users it was given and delivers over LMTP.

use testkit::{tagged, Client, Setup};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_started_server_knows_its_users_and_an_lmtp_delivery_reads_back() {
    let started = Setup::new().user("carol", "carol-pw").start().await;
    let mut lmtp = BufReader::new(
        tokio::net::TcpStream::connect(started.lmtp)
            .await
            .expect("the LMTP listener is up"),
    );
    let script = "LHLO test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<carol>\r\nDATA\r\n\
                  Subject: kit\r\n\r\nhello\r\n.\r\nQUIT\r\n";
    lmtp.get_mut()
        .write_all(script.as_bytes())
        .await
        .expect("send the LMTP script");
    let mut transcript = String::new();
    while lmtp.read_line(&mut transcript).await.expect("read LMTP") > 0 {}
    assert!(transcript.contains("221"), "{transcript}");

    let mut c = Client::connect(started.imap).await;
    assert!(tagged(&c.run("a", "LOGIN carol wrong").await).starts_with("a NO"));
    assert!(tagged(&c.run("b", "LOGIN carol carol-pw").await).starts_with("b OK"));
    let select = c.run("c", "SELECT INBOX").await;
    assert!(select.iter().any(|l| l == "* 1 EXISTS\r\n"), "{select:?}");
}
