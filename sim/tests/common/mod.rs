//! What the CLI tests share: the binary, and `imapsim serve` started on free ports (not every
//! test file starts one).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The imapsim binary under test.
pub const EXE: &str = env!("CARGO_BIN_EXE_imapsim");

/// A running `imapsim serve`, killed when dropped.
pub struct Serve {
    /// The process.
    pub child: Child,
    /// Its IMAP address.
    pub imap: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `imapsim serve` with the one user `carol` / `carol-password` on ports the OS picks.
pub fn serve() -> Serve {
    let mut child = Command::new(EXE)
        .args(["serve", "--imap", "127.0.0.1:0", "--lmtp", "127.0.0.1:0"])
        .args(["--user", "carol:carol-password"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("imapsim serve starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
    let ready = lines
        .find_map(|line| line.ok().filter(|l| l.starts_with("imapsim ready")))
        .expect("serve prints its ready line");
    let (imap, _) = sim::serve::ready_addresses(&ready).expect("the ready line has addresses");
    Serve { child, imap }
}
