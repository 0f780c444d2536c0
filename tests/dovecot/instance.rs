//! A private Dovecot on a loopback port for differential tests: its own config (from
//! `dovecot.conf.in`), folder, passwd-file user and log; stopped by pid when the handle drops.
//!
//! As root (how CI runs), Dovecot's login processes run as `dovenull`, its internal ones as
//! `dovecot`, and mail as the ordinary system user [`MAIL_USER`], created with `useradd` if
//! missing. As any other user, every process runs as that user (Dovecot's rootless mode).

use std::fmt;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The template of the configuration; see the file for its placeholders.
const CONFIG_TEMPLATE: &str = include_str!("dovecot.conf.in");

/// The system user mail is stored as when the test runs as root.
pub const MAIL_USER: &str = "imapsimtest";
/// The IMAP login of the one user.
pub const LOGIN: &str = "tester";
/// Its password.
pub const PASSWORD: &str = "tester-pw";

/// Why no instance could be started.
#[derive(Debug)]
pub enum SetupError {
    /// No `dovecot` binary on PATH or in the sbin folders.
    NotInstalled,
    /// A file or folder of the instance could not be written.
    Io { what: String, cause: std::io::Error },
    /// A command (useradd, id, dovecot) failed.
    Command { what: String, output: String },
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::NotInstalled => write!(
                f,
                "dovecot is not installed (apt-get install dovecot-imapd)"
            ),
            SetupError::Io { what, cause } => write!(f, "{what}: {cause}"),
            SetupError::Command { what, output } => write!(f, "{what} failed: {output}"),
        }
    }
}

impl std::error::Error for SetupError {}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SetupError {
    let what = what.into();
    move |cause| SetupError::Io { what, cause }
}

/// Runs a command and returns its trimmed standard output, or why it failed.
fn run(program: &str, args: &[&str]) -> Result<String, SetupError> {
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
        return Err(SetupError::Command { what, output });
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

/// Who owns which process: (login user, internal user, mail uid, mail gid, login chroot).
struct Users {
    login: String,
    internal: String,
    uid: u32,
    gid: u32,
    chroot: &'static str,
}

fn users() -> Result<Users, SetupError> {
    let parse = |s: String, what: &str| {
        s.parse::<u32>().map_err(|_| SetupError::Command {
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
fn free_port() -> Result<u16, SetupError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io("bind 127.0.0.1:0"))?;
    Ok(listener.local_addr().map_err(io("local address"))?.port())
}

/// A running instance; dropping it stops Dovecot (SIGTERM, then SIGKILL) and removes its folder,
/// which is kept, with its log, when the thread is panicking.
pub struct Dovecot {
    dir: PathBuf,
    pid: u32,
    /// The IMAP listener.
    pub addr: SocketAddr,
}

impl Dovecot {
    /// Starts an instance in a fresh folder under the system temp folder, named after `name`.
    pub fn start(name: &str) -> Result<Dovecot, SetupError> {
        let bin = binary().ok_or(SetupError::NotInstalled)?;
        let users = users()?;
        let dir =
            std::env::temp_dir().join(format!("imapsim-dovecot-{name}-{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(io(format!("remove {}", dir.display())))?;
        }
        let home = dir.join("home");
        for d in [dir.join("run"), dir.join("state"), home.clone()] {
            std::fs::create_dir_all(&d).map_err(io(format!("create {}", d.display())))?;
        }
        std::os::unix::fs::chown(&home, Some(users.uid), Some(users.gid))
            .map_err(io(format!("chown {}", home.display())))?;
        let passwd = format!(
            "{LOGIN}:{{PLAIN}}{PASSWORD}:{}:{}::{}::\n",
            users.uid,
            users.gid,
            home.display()
        );
        std::fs::write(dir.join("passwd"), passwd).map_err(io("write passwd"))?;
        let conf = dir.join("dovecot.conf");
        // The port is free when picked; another process may take it before Dovecot binds it, so
        // a failed start is retried with a new one.
        let mut last = None;
        for _ in 0..3 {
            let port = free_port()?;
            let text = CONFIG_TEMPLATE
                .replace("@DIR@", &dir.display().to_string())
                .replace("@LOGIN_USER@", &users.login)
                .replace("@INTERNAL_USER@", &users.internal)
                .replace("@LOGIN_CHROOT@", users.chroot)
                .replace("@PORT@", &port.to_string());
            std::fs::write(&conf, text).map_err(io("write dovecot.conf"))?;
            let bin = bin.to_string_lossy();
            let conf = conf.to_string_lossy();
            // The master binds its listeners before it forks into the background, so once this
            // returns the port accepts connections.
            // Its output goes to a file: the daemon keeps the standard streams it was given
            // open, so reading them through pipes would wait for it to exit.
            let out_path = dir.join("start.out");
            let out = std::fs::File::create(&out_path).map_err(io("create start.out"))?;
            let err = out.try_clone().map_err(io("clone start.out"))?;
            let status = Command::new(&*bin)
                .args(["-c", &conf])
                .stdout(out)
                .stderr(err)
                .status();
            let status = status.map_err(io(format!("{bin} -c {conf}")))?;
            let started = if status.success() {
                Ok(())
            } else {
                let output = std::fs::read_to_string(&out_path).unwrap_or_default();
                Err(SetupError::Command {
                    what: format!("{bin} -c {conf}"),
                    output: format!("{status}: {output}"),
                })
            };
            match started {
                Ok(()) => {
                    // The daemon writes its pid file just after it forks; wait for it, up to 10 s.
                    let pid_file = dir.join("run").join("master.pid");
                    let mut pid = std::fs::read_to_string(&pid_file);
                    for _ in 0..200 {
                        if pid.as_ref().is_ok_and(|p| p.ends_with('\n')) {
                            break;
                        }
                        std::thread::sleep(std::time::Duration::from_millis(50));
                        pid = std::fs::read_to_string(&pid_file);
                    }
                    let pid = pid.map_err(io(format!("read {}", pid_file.display())))?;
                    let pid = pid.trim().parse().map_err(|_| SetupError::Command {
                        what: "read master.pid".into(),
                        output: pid.clone(),
                    })?;
                    return Ok(Dovecot {
                        dir,
                        pid,
                        addr: SocketAddr::from(([127, 0, 0, 1], port)),
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("the loop ran at least once"))
    }

    /// The instance's log file.
    pub fn log(&self) -> PathBuf {
        self.dir.join("dovecot.log")
    }

    fn alive(&self) -> bool {
        Path::new(&format!("/proc/{}", self.pid)).exists()
    }
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
                std::thread::sleep(std::time::Duration::from_millis(50));
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
