//! Tests of the real-TCP load runs.

use super::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

#[test]
fn remote_addresses_are_refused_unless_allowed() {
    let rt = runtime();
    let remote = rt.block_on(resolve("192.0.2.7:143", false));
    assert!(matches!(remote, Err(LoadError::Remote(_))), "{remote:?}");
    let allowed = rt
        .block_on(resolve("192.0.2.7:143", true))
        .expect("allowed");
    assert_eq!(allowed.port(), 143);
    let local = rt
        .block_on(resolve("127.0.0.1:1143", false))
        .expect("loopback");
    assert!(local.ip().is_loopback());
    assert!(matches!(
        rt.block_on(resolve("[::1]:1143", false)),
        Ok(a) if a.ip().is_loopback()
    ));
}

#[test]
fn options_out_of_bounds_are_refused_before_connecting() {
    let ok = LoadOptions {
        imap: "127.0.0.1:1".into(),
        users: vec![("a".into(), "b".into())],
        workload: Workload::StoreFlags,
        ..LoadOptions::default()
    };
    assert!(check_bounds(&ok).is_ok());
    for bad in [
        LoadOptions {
            users: Vec::new(),
            ..ok.clone()
        },
        LoadOptions {
            connections: CONNECTIONS_MAX + 1,
            ..ok.clone()
        },
        LoadOptions {
            max_seconds: 0,
            ..ok.clone()
        },
        LoadOptions {
            emails: Some(1),
            ..ok.clone()
        },
    ] {
        assert!(matches!(check_bounds(&bad), Err(LoadError::Bounds(_))));
    }
    assert!(matches!(
        Workload::parse("fetch_everything"),
        Err(LoadError::UnknownWorkload(_))
    ));
    for w in Workload::ALL {
        assert_eq!(Workload::parse(w.as_str()).expect("round trip"), w);
    }
}

#[test]
fn a_run_against_nothing_reports_a_broken_session_not_a_panic() {
    // A port nothing listens on: bind one, read it back, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let options = LoadOptions {
        imap: format!("127.0.0.1:{port}"),
        users: vec![("a".into(), "b".into())],
        workload: Workload::FetchAll,
        emails: Some(1),
        max_seconds: 10,
        ..LoadOptions::default()
    };
    let run = run_blocking(&options).expect("starts");
    // Every session of the workload: the preloaders and the measured one.
    assert_eq!(run.report.broken, PRELOAD_SESSIONS as u64 + 1);
    assert_eq!(run.report.commands, 0);
    assert!(!run.report.budget_ok && !run.report.sampled);
    assert!(run.report.failures.iter().any(|f| f.contains("connect")));
}
