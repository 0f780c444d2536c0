//! A private Dovecot 2.3 on loopback ports (Debian's `dovecot-imapd`, and `dovecot-lmtpd` when LMTP
//! is asked for): its own configuration, folder, passwd-file users and log, started with
//! `dovecot -c FILE` and stopped by pid when the handle drops. Used by `imapsim compare` and by
//! the differential tests.
//!
//! As root, Dovecot's login processes run as `dovenull`, its internal ones as `dovecot`, and mail
//! as the ordinary system user [`MAIL_USER`], created with `useradd` if missing (Dovecot refuses
//! root for those). As any other user, every process runs as that user (Dovecot's rootless mode).

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The system user mail is stored as when Dovecot is started by root.
pub const MAIL_USER: &str = "imapsimtest";

/// Where Debian's `dovecot-lmtpd` puts the LMTP service binary.
pub const LMTP_BINARY: &str = "/usr/lib/dovecot/lmtp";

/// The configuration; `@NAMES@` are filled in by [`Dovecot::start`]. Everything Dovecot writes
/// stays under `@DIR@`; it listens on loopback only.
const CONFIG_TEMPLATE: &str = r#"# A private Dovecot 2.3 written by imapsim (sim/src/dovecot.rs).
base_dir = @DIR@/run
state_dir = @DIR@/state
log_path = @DIR@/dovecot.log
info_log_path = @DIR@/dovecot.log
protocols = @PROTOCOLS@
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
default_login_user = @LOGIN_USER@
default_internal_user = @INTERNAL_USER@
first_valid_uid = 1
mail_location = maildir:~/Maildir
postmaster_address = postmaster@imapsim.test
# Many connections of one user from one address (load runs open hundreds).
mail_max_userip_connections = @PROCESS_LIMIT@
default_process_limit = @PROCESS_LIMIT@
default_client_limit = @CLIENT_LIMIT@
# Beyond fs.inotify.max_user_instances IDLE sessions fall back to polling: poll often.
mailbox_idle_check_interval = 1 secs

passdb {
  driver = passwd-file
  args = @DIR@/passwd
}
userdb {
  driver = passwd-file
  args = @DIR@/passwd
}

service imap-login {
  chroot = @LOGIN_CHROOT@
  inet_listener imap {
    address = 127.0.0.1
    port = @PORT@
  }
  inet_listener imaps {
    port = 0
  }
}
service anvil {
  client_limit = @CLIENT_LIMIT@
}
service auth {
  client_limit = @CLIENT_LIMIT@
}
"#;

/// The LMTP listener, appended to the configuration when LMTP is asked for.
const LMTP_TEMPLATE: &str = r#"
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = @LMTP_PORT@
  }
}
"#;

/// What to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DovecotOptions {
    /// Names the instance's folder (`imapsim-dovecot-NAME-PID` under the temp folder). Default "instance".
    pub name: String,
    /// Users as (login, password), stored in a passwd-file with `{PLAIN}` passwords. Default none.
    pub users: Vec<(String, String)>,
    /// Whether to listen for LMTP too (needs `dovecot-lmtpd`). Default false.
    pub lmtp: bool,
    /// Processes of one service at most, and connections of one user from one address. Default 1,000.
    pub process_limit: usize,
}

impl Default for DovecotOptions {
    fn default() -> Self {
        DovecotOptions {
            name: "instance".to_string(),
            users: Vec::new(),
            lmtp: false,
            process_limit: 1_000,
        }
    }
}

/// Why no instance could be started.
#[derive(Debug, thiserror::Error)]
pub enum DovecotError {
    /// No `dovecot` binary on PATH or in the sbin folders.
    #[error("dovecot is not installed (apt-get install dovecot-imapd)")]
    NotInstalled,
    /// LMTP was asked for but Debian's LMTP service is missing.
    #[error("dovecot's LMTP service is not installed (apt-get install dovecot-lmtpd)")]
    LmtpNotInstalled,
    /// A user name or password a passwd-file cannot hold (`:` or a line break).
    #[error("user {0:?}: a passwd-file cannot hold ':' or line breaks in a name or password")]
    BadUser(String),
    /// A file or folder of the instance could not be written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// A command (useradd, id, dovecot) failed.
    #[error("{what} failed: {output}")]
    Command {
        /// The command.
        what: String,
        /// Its status and output.
        output: String,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DovecotError {
    let what = what.into();
    move |source| DovecotError::Io { what, source }
}

/// Runs a command and returns its trimmed standard output, or why it failed.
fn run(program: &str, args: &[&str]) -> Result<String, DovecotError> {
    let what = format!("{program} {}", args.join(" "));
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(io(what.clone()))?;
    if !out.status.success() {
        let output = format!(
            "{}; stdout: {}; stderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return Err(DovecotError::Command { what, output });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The `dovecot` binary: on PATH or in the usual sbin folders (PATH may lack them).
pub fn binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join("dovecot"))
        .find(|p| p.is_file())
}

/// Whether Debian's LMTP service is installed.
pub fn lmtp_installed() -> bool {
    Path::new(LMTP_BINARY).is_file()
}

/// Who owns which process: (login user, internal user, mail uid, mail gid, login chroot).
struct Users {
    login: String,
    internal: String,
    uid: u32,
    gid: u32,
    chroot: &'static str,
}

fn users() -> Result<Users, DovecotError> {
    let parse = |s: String, what: &str| {
        s.parse::<u32>().map_err(|_| DovecotError::Command {
            what: what.into(),
            output: format!("not a number: {s}"),
        })
    };
    let euid = parse(run("id", &["-u"])?, "id -u")?;
    if euid != 0 {
        let me = run("id", &["-un"])?;
        let gid = parse(run("id", &["-g"])?, "id -g")?;
        return Ok(Users {
            login: me.clone(),
            internal: me,
            uid: euid,
            gid,
            chroot: "",
        });
    }
    if run("id", &["-u", MAIL_USER]).is_err() {
        run(
            "useradd",
            &[
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                MAIL_USER,
            ],
        )?;
    }
    Ok(Users {
        login: "dovenull".into(),
        internal: "dovecot".into(),
        uid: parse(run("id", &["-u", MAIL_USER])?, "id -u")?,
        gid: parse(run("id", &["-g", MAIL_USER])?, "id -g")?,
        chroot: "login",
    })
}

/// A free loopback port: bound with port 0, read back, released.
fn free_port() -> Result<u16, DovecotError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io("bind 127.0.0.1:0"))?;
    Ok(listener.local_addr().map_err(io("local address"))?.port())
}

/// The configuration text for one attempt.
fn config_text(
    dir: &Path,
    users: &Users,
    options: &DovecotOptions,
    port: u16,
    lmtp_port: u16,
) -> String {
    let mut text = CONFIG_TEMPLATE.to_string();
    if options.lmtp {
        text.push_str(LMTP_TEMPLATE);
    }
    let limit = options.process_limit.max(1);
    text.replace("@DIR@", &dir.display().to_string())
        .replace(
            "@PROTOCOLS@",
            if options.lmtp { "imap lmtp" } else { "imap" },
        )
        .replace("@LOGIN_USER@", &users.login)
        .replace("@INTERNAL_USER@", &users.internal)
        .replace("@LOGIN_CHROOT@", users.chroot)
        .replace("@PROCESS_LIMIT@", &limit.to_string())
        // Anvil and auth talk to every login and mail process: room for all of them.
        .replace("@CLIENT_LIMIT@", &(3 * limit + 100).to_string())
        .replace("@PORT@", &port.to_string())
        .replace("@LMTP_PORT@", &lmtp_port.to_string())
}

/// A running instance; dropping it stops Dovecot (SIGTERM, then SIGKILL) and removes its folder,
/// which is kept, with its log, when the thread is panicking.
pub struct Dovecot {
    dir: PathBuf,
    pid: u32,
    /// The IMAP listener.
    pub imap: SocketAddr,
    /// The LMTP listener, when asked for.
    pub lmtp: Option<SocketAddr>,
}

impl Dovecot {
    /// Starts an instance in a fresh folder under the system temp folder.
    pub fn start(options: &DovecotOptions) -> Result<Dovecot, DovecotError> {
        let bin = binary().ok_or(DovecotError::NotInstalled)?;
        if options.lmtp && !lmtp_installed() {
            return Err(DovecotError::LmtpNotInstalled);
        }
        for (name, password) in &options.users {
            let bad = |s: &str| s.is_empty() || s.contains([':', '\n', '\r']);
            if bad(name) || bad(password) {
                return Err(DovecotError::BadUser(name.clone()));
            }
        }
        let users = users()?;
        let dir = std::env::temp_dir().join(format!(
            "imapsim-dovecot-{}-{}",
            options.name,
            std::process::id()
        ));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(io(format!("remove {}", dir.display())))?;
        }
        let home = dir.join("home");
        for d in [dir.join("run"), dir.join("state"), home.clone()] {
            std::fs::create_dir_all(&d).map_err(io(format!("create {}", d.display())))?;
        }
        let mut passwd = String::new();
        for (i, (name, password)) in options.users.iter().enumerate() {
            let user_home = home.join(i.to_string());
            std::fs::create_dir_all(&user_home)
                .map_err(io(format!("create {}", user_home.display())))?;
            std::os::unix::fs::chown(&user_home, Some(users.uid), Some(users.gid))
                .map_err(io(format!("chown {}", user_home.display())))?;
            passwd.push_str(&format!(
                "{name}:{{PLAIN}}{password}:{}:{}::{}::\n",
                users.uid,
                users.gid,
                user_home.display()
            ));
        }
        std::fs::write(dir.join("passwd"), passwd).map_err(io("write passwd"))?;
        let conf = dir.join("dovecot.conf");
        // The ports are free when picked; another process may take one before Dovecot binds it,
        // so a failed start is retried with new ones.
        let mut last = None;
        for _ in 0..3 {
            let port = free_port()?;
            let lmtp_port = if options.lmtp { free_port()? } else { 0 };
            if options.lmtp && lmtp_port == port {
                continue;
            }
            std::fs::write(&conf, config_text(&dir, &users, options, port, lmtp_port))
                .map_err(io("write dovecot.conf"))?;
            match launch(&bin, &conf, &dir) {
                Ok(pid) => {
                    return Ok(Dovecot {
                        dir,
                        pid,
                        imap: SocketAddr::from(([127, 0, 0, 1], port)),
                        lmtp: options
                            .lmtp
                            .then(|| SocketAddr::from(([127, 0, 0, 1], lmtp_port))),
                    })
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| DovecotError::Command {
            what: "pick two free ports".into(),
            output: "the same port twice".into(),
        }))
    }

    /// The master process's id: every Dovecot process of the instance descends from it.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The instance's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The instance's log file.
    pub fn log(&self) -> PathBuf {
        self.dir.join("dovecot.log")
    }

    fn alive(&self) -> bool {
        Path::new(&format!("/proc/{}", self.pid)).exists()
    }
}

/// Runs `dovecot -c conf` and waits for the master's pid file; returns the pid.
fn launch(bin: &Path, conf: &Path, dir: &Path) -> Result<u32, DovecotError> {
    let bin = bin.to_string_lossy();
    let conf = conf.to_string_lossy();
    // The master binds its listeners before it forks into the background, so once this returns
    // the ports accept connections. Its output goes to a file: the daemon keeps the standard
    // streams it was given open, so reading them through pipes would wait for it to exit.
    let out_path = dir.join("start.out");
    let out = std::fs::File::create(&out_path).map_err(io("create start.out"))?;
    let err = out.try_clone().map_err(io("clone start.out"))?;
    let status = Command::new(&*bin)
        .args(["-c", &conf])
        .stdout(out)
        .stderr(err)
        .status()
        .map_err(io(format!("{bin} -c {conf}")))?;
    if !status.success() {
        let output = std::fs::read_to_string(&out_path).unwrap_or_default();
        return Err(DovecotError::Command {
            what: format!("{bin} -c {conf}"),
            output: format!("{status}: {output}"),
        });
    }
    // The daemon writes its pid file just after it forks; wait for it, up to 10 s.
    let pid_file = dir.join("run").join("master.pid");
    let mut pid = std::fs::read_to_string(&pid_file);
    for _ in 0..200 {
        if pid.as_ref().is_ok_and(|p| p.ends_with('\n')) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        pid = std::fs::read_to_string(&pid_file);
    }
    let pid = pid.map_err(io(format!("read {}", pid_file.display())))?;
    pid.trim().parse().map_err(|_| DovecotError::Command {
        what: "read master.pid".into(),
        output: pid.clone(),
    })
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let pid = self.pid.to_string();
        for signal in ["-TERM", "-KILL"] {
            if let Err(e) = run("kill", &[signal, &pid]) {
                eprintln!("stopping dovecot (pid {pid}): {e}");
            }
            // Up to 5 s for the master to stop its children and exit.
            for _ in 0..100 {
                if !self.alive() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if !self.alive() {
                break;
            }
        }
        if std::thread::panicking() {
            eprintln!(
                "dovecot's folder is kept for inspection: {} (log: {})",
                self.dir.display(),
                self.log().display()
            );
        } else if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("removing {}: {e}", self.dir.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_users() -> Users {
        Users {
            login: "dovenull".into(),
            internal: "dovecot".into(),
            uid: 1000,
            gid: 1000,
            chroot: "login",
        }
    }

    #[test]
    fn config_listens_on_loopback_and_adds_lmtp_only_when_asked() {
        let options = DovecotOptions {
            process_limit: 50,
            ..DovecotOptions::default()
        };
        let text = config_text(Path::new("/x"), &root_users(), &options, 1143, 0);
        assert!(text.contains("protocols = imap\n"));
        assert!(text.contains("port = 1143"));
        assert!(text.contains("default_process_limit = 50"));
        assert!(!text.contains("service lmtp"));
        let lmtp = DovecotOptions {
            lmtp: true,
            ..options
        };
        let text = config_text(Path::new("/x"), &root_users(), &lmtp, 1143, 1024);
        assert!(text.contains("protocols = imap lmtp"));
        assert!(text.contains("port = 1024"));
        assert!(text.contains("base_dir = /x/run"));
        for placeholder in [
            "@DIR@",
            "@PROTOCOLS@",
            "@LOGIN_USER@",
            "@INTERNAL_USER@",
            "@LOGIN_CHROOT@",
            "@PROCESS_LIMIT@",
            "@CLIENT_LIMIT@",
            "@PORT@",
            "@LMTP_PORT@",
        ] {
            assert!(!text.contains(placeholder), "{placeholder} is filled in");
        }
    }
}
