//! `imapsim serve`: the real server on loopback TCP with an in-process fakes3 as its store, so
//! real clients (Python's imaplib, mbsync) can use it. Production environment: OS RNG, system clock.
//! This module holds what is the command's own (options, the config file, the store, the ready
//! line); listening and accepting are the server's ([`server::listener`]).

use std::path::Path;

pub use bench::compare::ready_line::ready_addresses;
use bench::compare::ready_line::ready_line;
use serde::Deserialize;
use server::config::{KdfParams, Limits};
use server::env::Env;
use server::listener::{BindError, Listeners};
use server::storage::StorageConfig;

use crate::harness::server_config;

/// Default IMAP address.
pub const DEFAULT_IMAP: &str = "127.0.0.1:1143";
/// Default LMTP address.
pub const DEFAULT_LMTP: &str = "127.0.0.1:1024";

/// What `serve` listens on and whom it knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeOptions {
    /// IMAP listen address. Default 127.0.0.1:1143.
    pub imap: String,
    /// LMTP listen address. Default 127.0.0.1:1024.
    pub lmtp: String,
    /// Users as (name, password). Default alice:alice-password and bob:bob-password.
    pub users: Vec<(String, String)>,
    /// An external S3 + K2V store (a Garage cluster). Default none: an in-process fakes3.
    pub store: Option<StoreFile>,
}

/// The `[store]` section of the config file: a real S3 + K2V endpoint, such as Garage's.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreFile {
    /// S3 API endpoint, `host:port` (Garage's default port is 3900).
    pub s3_endpoint: String,
    /// K2V API endpoint, `host:port` (Garage's default port is 3904).
    pub k2v_endpoint: String,
    /// Region. Default "garage".
    #[serde(default = "default_region")]
    pub region: String,
    /// Bucket holding everything.
    pub bucket: String,
    /// Access key id.
    pub key_id: String,
    /// Secret access key.
    pub secret: String,
}

fn default_region() -> String {
    "garage".to_string()
}

/// The optional TOML config file: `imap = "..."`, `lmtp = "..."`, `[[users]] name/password`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeFile {
    /// IMAP listen address.
    pub imap: Option<String>,
    /// LMTP listen address.
    pub lmtp: Option<String>,
    /// Users.
    #[serde(default)]
    pub users: Vec<FileUser>,
    /// An external store instead of the in-process fakes3.
    pub store: Option<StoreFile>,
}

/// One user in the config file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileUser {
    /// Login name.
    pub name: String,
    /// Password.
    pub password: String,
}

/// `serve` errors.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A `--user` flag is not NAME:PASSWORD.
    #[error("--user {0:?} is not NAME:PASSWORD")]
    BadUser(String),
    /// The config file cannot be read.
    #[error("cannot read {path}: {source}")]
    ReadConfig {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The config file is not valid.
    #[error("{path} is not a valid serve config: {source}")]
    ParseConfig {
        /// The file.
        path: String,
        /// Why.
        source: toml::de::Error,
    },
    /// A listener or the store could not start.
    #[error(transparent)]
    Listen(#[from] BindError),
    /// The embedded store refused its configuration.
    #[error("fakes3 configuration: {0}")]
    FakeS3(#[from] fakes3::ConfigError),
}

/// Parses a `--user NAME:PASSWORD` flag.
pub fn parse_user(flag: &str) -> Result<(String, String), ServeError> {
    match flag.split_once(':') {
        Some((name, password)) if !name.is_empty() && !password.is_empty() => {
            Ok((name.to_string(), password.to_string()))
        }
        _ => Err(ServeError::BadUser(flag.to_string())),
    }
}

/// Combines flags and the optional config file (flags win; demo users when none are given).
pub fn resolve(
    imap: Option<String>,
    lmtp: Option<String>,
    user_flags: &[String],
    config: Option<&Path>,
) -> Result<ServeOptions, ServeError> {
    let file = match config {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ServeError::ReadConfig {
                path: path.display().to_string(),
                source,
            })?;
            toml::from_str::<ServeFile>(&text).map_err(|source| ServeError::ParseConfig {
                path: path.display().to_string(),
                source,
            })?
        }
        None => ServeFile::default(),
    };
    let mut users = user_flags
        .iter()
        .map(|f| parse_user(f))
        .collect::<Result<Vec<_>, _>>()?;
    if users.is_empty() {
        users = file
            .users
            .into_iter()
            .map(|u| (u.name, u.password))
            .collect();
    }
    if users.is_empty() {
        users = vec![
            ("alice".to_string(), "alice-password".to_string()),
            ("bob".to_string(), "bob-password".to_string()),
        ];
    }
    Ok(ServeOptions {
        imap: imap
            .or(file.imap)
            .unwrap_or_else(|| DEFAULT_IMAP.to_string()),
        lmtp: lmtp
            .or(file.lmtp)
            .unwrap_or_else(|| DEFAULT_LMTP.to_string()),
        users,
        store: file.store,
    })
}

/// Runs the server until Ctrl-C.
pub async fn serve(options: ServeOptions) -> Result<(), ServeError> {
    // The in-process fakes3 unless the config names a real store; kept alive while serving.
    let mut _fake = None;
    let storage = match &options.store {
        Some(store) => StorageConfig {
            s3_endpoint: store.s3_endpoint.clone(),
            k2v_endpoint: store.k2v_endpoint.clone(),
            region: store.region.clone(),
            bucket: store.bucket.clone(),
            key_id: store.key_id.clone(),
            secret: store.secret.clone(),
            max_in_flight: 16,
            max_idle_connections: 4,
        },
        None => {
            let fake_config = fakes3::Config::default();
            let fake = fakes3::FakeS3::new(fake_config.clone())?;
            let (s3, k2v) = fake
                .serve_loopback("127.0.0.1:0", "127.0.0.1:0")
                .await
                .map_err(|source| BindError {
                    addr: "127.0.0.1:0 (fakes3)".into(),
                    source,
                })?;
            _fake = Some(fake);
            StorageConfig {
                s3_endpoint: s3.to_string(),
                k2v_endpoint: k2v.to_string(),
                region: fake_config.region,
                bucket: fake_config.bucket,
                key_id: fake_config.key_id,
                secret: fake_config.secret,
                max_in_flight: 16,
                max_idle_connections: 4,
            }
        }
    };
    let store_line = format!(
        "{} (S3 {}, K2V {})",
        if options.store.is_some() {
            "external"
        } else {
            "fakes3"
        },
        storage.s3_endpoint,
        storage.k2v_endpoint
    );
    let config = server_config(
        storage,
        &options.users,
        Limits::default(),
        KdfParams::default(),
    );
    let server = server::Server::new(config, Env::production());
    let listeners = Listeners::bind(&options.imap, &options.lmtp).await?;
    let names: Vec<&str> = options
        .users
        .iter()
        .map(|(name, _)| name.as_str())
        .collect();
    // The bound addresses, so that port 0 can be asked for and read back (see `ready_addresses`).
    let local = |listener: &tokio::net::TcpListener, asked: &str| {
        listener
            .local_addr()
            .map_or_else(|_| asked.to_string(), |a| a.to_string())
    };
    println!(
        "{}",
        ready_line(
            &local(&listeners.imap, &options.imap),
            &local(&listeners.lmtp, &options.lmtp),
            &store_line,
            &names
        )
    );
    // The line may go to a pipe: a parent process waits for it.
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let ctrl_c = async {
        // A failure to watch for Ctrl-C stops the server as Ctrl-C would.
        let _ = tokio::signal::ctrl_c().await;
    };
    listeners.serve(server, ctrl_c).await;
    println!("imapsim: stopping");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_line_gives_both_addresses() {
        let line = "imapsim ready: IMAP on 127.0.0.1:40001, LMTP on 127.0.0.1:40002, store fakes3 \
                    (S3 127.0.0.1:1, K2V 127.0.0.1:2), users alice";
        assert_eq!(
            ready_addresses(line),
            Some(("127.0.0.1:40001".into(), "127.0.0.1:40002".into()))
        );
        assert_eq!(ready_addresses("imapsim: stopping"), None);
    }

    #[test]
    fn user_flags_need_a_name_and_a_password() {
        assert_eq!(
            parse_user("carol:pw:with:colons").expect("valid"),
            ("carol".into(), "pw:with:colons".into())
        );
        assert!(matches!(parse_user("carol"), Err(ServeError::BadUser(_))));
        assert!(matches!(parse_user(":pw"), Err(ServeError::BadUser(_))));
    }

    #[test]
    fn demo_users_and_default_addresses_when_nothing_is_given() {
        let options = resolve(None, None, &[], None).expect("defaults");
        assert_eq!(options.imap, DEFAULT_IMAP);
        assert_eq!(options.lmtp, DEFAULT_LMTP);
        assert_eq!(options.users[0], ("alice".into(), "alice-password".into()));
        assert_eq!(options.users.len(), 2);
    }

    #[test]
    fn config_file_users_and_addresses_apply_and_flags_win() {
        let dir = std::env::temp_dir().join(format!("imapsim-serve-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("serve.toml");
        std::fs::write(
            &path,
            "imap = \"127.0.0.1:2143\"\n[[users]]\nname = \"dave\"\npassword = \"d\"\n",
        )
        .expect("write config");
        let options =
            resolve(None, Some("127.0.0.1:2024".into()), &[], Some(&path)).expect("valid file");
        assert_eq!(options.imap, "127.0.0.1:2143");
        assert_eq!(options.lmtp, "127.0.0.1:2024");
        assert_eq!(options.users, vec![("dave".to_string(), "d".to_string())]);
        let options = resolve(None, None, &["eve:e".to_string()], Some(&path)).expect("valid file");
        assert_eq!(options.users, vec![("eve".to_string(), "e".to_string())]);
        assert_eq!(options.store, None, "no [store]: the in-process fakes3");
        std::fs::write(
            &path,
            "[store]\ns3_endpoint = \"10.0.0.5:3900\"\nk2v_endpoint = \"10.0.0.5:3904\"\n\
             bucket = \"mail\"\nkey_id = \"GK1\"\nsecret = \"s\"\n",
        )
        .expect("write config");
        let options = resolve(None, None, &[], Some(&path)).expect("valid file");
        let store = options.store.expect("a [store] section");
        assert_eq!(
            (store.k2v_endpoint.as_str(), store.region.as_str()),
            ("10.0.0.5:3904", "garage")
        );
        std::fs::write(&path, "port = 3\n").expect("write config");
        assert!(matches!(
            resolve(None, None, &[], Some(&path)),
            Err(ServeError::ParseConfig { .. })
        ));
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
