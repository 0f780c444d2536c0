//! fakes3 as a turmoil host: the caller runs the accept loops, hands each stream over, and simulated time
//! drives PollItem.

mod common;

use std::time::{Duration, UNIX_EPOCH};

use common::Client;
use fakes3::{Api, Config, FakeS3};
use hyper::StatusCode;

async fn accept_loop(listener: turmoil::net::TcpListener, fake: FakeS3, api: Api) {
    while let Ok((stream, _)) = listener.accept().await {
        let fake = fake.clone();
        tokio::spawn(async move {
            let _ = fake.serve_connection(api, stream).await;
        });
    }
}

#[test]
fn serves_s3_and_k2v_inside_a_turmoil_simulation() -> turmoil::Result {
    let mut sim = turmoil::Builder::new()
        .epoch(UNIX_EPOCH)
        .rng_seed(7)
        .simulation_duration(Duration::from_secs(120))
        .build();
    let fake = FakeS3::new(Config::default())?;
    let host_fake = fake.clone();
    sim.host("fakes3", move || {
        let fake = host_fake.clone();
        async move {
            let s3 = turmoil::net::TcpListener::bind("0.0.0.0:3900").await?;
            let k2v = turmoil::net::TcpListener::bind("0.0.0.0:3904").await?;
            tokio::spawn(accept_loop(k2v, fake.clone(), Api::K2v));
            accept_loop(s3, fake, Api::S3).await;
            Ok(())
        }
    });
    sim.client("imap", async move {
        let stream = turmoil::net::TcpStream::connect("fakes3:3900").await?;
        let mut s3 = Client::over(stream, Api::S3).await;
        assert_eq!(
            s3.call("PUT", "/imapsim/chunk/0", &[], "data").await.status,
            StatusCode::OK
        );
        let r = s3
            .call("GET", "/imapsim/chunk/0", &[("range", "bytes=1-2")], "")
            .await;
        assert_eq!(&r.body[..], b"at");

        let mut k2v = Client::over(
            turmoil::net::TcpStream::connect("fakes3:3904").await?,
            Api::K2v,
        )
        .await;
        let mut poller = Client::over(
            turmoil::net::TcpStream::connect("fakes3:3904").await?,
            Api::K2v,
        )
        .await;
        k2v.call("PUT", "/imapsim/mbox?sort_key=watch", &[], "1")
            .await;
        let r = k2v.get("/imapsim/mbox?sort_key=watch").await;
        let token = r
            .header("x-garage-causality-token")
            .expect("token")
            .to_string();

        let path = format!("/imapsim/mbox?sort_key=watch&causality_token={token}&timeout=2");
        let started = tokio::time::Instant::now();
        assert_eq!(poller.get(&path).await.status, StatusCode::NOT_MODIFIED);
        assert!(started.elapsed() >= Duration::from_secs(2));

        let path = format!("/imapsim/mbox?sort_key=watch&causality_token={token}");
        let started = tokio::time::Instant::now();
        let poll = tokio::spawn(async move { poller.get(&path).await });
        tokio::time::sleep(Duration::from_secs(10)).await;
        let ct = [("x-garage-causality-token", token.as_str())];
        k2v.call("PUT", "/imapsim/mbox?sort_key=watch", &ct, "2")
            .await;
        let r = poll.await?;
        assert_eq!(r.status, StatusCode::OK);
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(10) && waited < Duration::from_secs(11),
            "{waited:?}"
        );
        Ok(())
    });
    sim.run()?;
    assert_eq!(fake.objects().len(), 1);
    assert_eq!(
        fake.rows()[0].2,
        vec![Some(bytes::Bytes::from_static(b"2"))]
    );
    Ok(())
}
