//! Shared helpers of imapsim's integration tests (tests/tests/*.rs): each test binary declares
//! the counting allocator with `sim::simulation_binary!();`.

use std::sync::{Mutex, MutexGuard};

use sim::figures::Report;

static SERIAL: Mutex<()> = Mutex::new(());

/// Serialises simulations within one test binary, so that process-wide lazy initialisations
/// made by one run never land in the middle of another's figures.
pub fn serial() -> MutexGuard<'static, ()> {
    // A test that panicked while holding the lock leaves nothing inconsistent behind.
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs scenario `name` with `seed`, failing the test with the replay command if it cannot run.
pub fn run_scenario(name: &str, seed: u64) -> Report {
    let scenario = sim::scenarios::find(name).expect("scenario is registered");
    match scenario.run(seed) {
        Ok(report) => report,
        Err(e) => panic!(
            "{name} seed {seed} did not complete: {e}\nreproduce: {}",
            sim::budget::reproduce_command(name, seed)
        ),
    }
}

/// Fails the test unless every response was parsable and as expected.
pub fn assert_clean(report: &Report) {
    assert!(
        report.is_clean(),
        "{} seed {}: {} unexpected, {} unparsable, {} mismatches:\n{}\nreproduce: {}",
        report.scenario,
        report.seed,
        report.unexpected,
        report.unparsable,
        report.mismatches,
        report.failures.join("\n"),
        sim::budget::reproduce_command(&report.scenario, report.seed)
    );
}

/// The server and its fakes3 on loopback TCP, for tests that drive them with real clients.
pub mod loopback {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use server::config::{KdfParams, Limits, ServerConfig, UserConfig};
    use server::env::{Env, SeededEntropy};
    use server::storage::StorageConfig;
    use server::Server;

    /// Where a started server listens.
    pub struct Loopback {
        /// IMAP address.
        pub imap: SocketAddr,
        /// LMTP address.
        pub lmtp: SocketAddr,
    }

    /// Starts fakes3 and a server knowing `user` / `password` on ports the OS picks, with cheap key
    /// derivation (tests log in often) and entropy seeded with 1.
    pub async fn start(user: &str, password: &str, limits: Limits, hostname: &str) -> Loopback {
        let fake =
            fakes3::FakeS3::new(fakes3::Config::default()).expect("default fakes3 config is valid");
        let (s3, k2v) = fake
            .serve_loopback("127.0.0.1:0", "127.0.0.1:0")
            .await
            .expect("bind fakes3 on loopback");
        let d = fakes3::Config::default();
        let config = ServerConfig {
            storage: StorageConfig {
                s3_endpoint: s3.to_string(),
                k2v_endpoint: k2v.to_string(),
                region: d.region,
                bucket: d.bucket,
                key_id: d.key_id,
                secret: d.secret,
                max_in_flight: 8,
                max_idle_connections: 4,
            },
            users: vec![UserConfig {
                name: user.into(),
                password: password.into(),
            }],
            limits,
            kdf: KdfParams {
                memory_kib: 64,
                iterations: 1,
                parallelism: 1,
            },
            hostname: hostname.into(),
        };
        let mut env = Env::production();
        env.entropy = Arc::new(SeededEntropy::new(1));
        let server = Server::new(config, env);
        let imap = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind IMAP on loopback");
        let lmtp = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind LMTP on loopback");
        let addrs = Loopback {
            imap: imap.local_addr().expect("IMAP listener has an address"),
            lmtp: lmtp.local_addr().expect("LMTP listener has an address"),
        };
        let imap_server = server.clone();
        tokio::spawn(async move {
            while let Ok((io, peer)) = imap.accept().await {
                let server = imap_server.clone();
                tokio::spawn(server.serve_imap(io, peer));
            }
        });
        tokio::spawn(async move {
            while let Ok((io, peer)) = lmtp.accept().await {
                let server = server.clone();
                tokio::spawn(async move { server.serve_lmtp(io, peer).await });
            }
        });
        addrs
    }
}
