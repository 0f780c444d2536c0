//! A minimal LMTP client (RFC 2033) over any byte stream: LHLO, then one transaction per message,
//! dot-stuffed line by line without copying the message.

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

/// LMTP errors.
#[derive(Debug, thiserror::Error)]
pub enum LmtpError {
    /// The socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The server answered with another code than expected.
    #[error("expected {expected}, got {line:?}")]
    Unexpected {
        /// Expected reply code.
        expected: &'static str,
        /// The reply line.
        line: String,
    },
    /// The driver was given no LMTP server.
    #[error("no LMTP server to deliver to")]
    NoServer,
}

/// An LMTP session.
pub struct LmtpClient<S> {
    stream: BufReader<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> LmtpClient<S> {
    /// Reads the greeting of a connected stream and says LHLO.
    pub async fn connect(stream: S) -> Result<Self, LmtpError> {
        let mut client = LmtpClient {
            stream: BufReader::new(stream),
        };
        client.expect("220").await?;
        client.stream.get_mut().write_all(b"LHLO sim\r\n").await?;
        client.expect("250").await?;
        Ok(client)
    }

    /// Reads one reply (all its continuation lines) and checks its code.
    async fn expect(&mut self, code: &'static str) -> Result<(), LmtpError> {
        loop {
            let mut line = String::new();
            if self.stream.read_line(&mut line).await? == 0 {
                return Err(LmtpError::Unexpected {
                    expected: code,
                    line: "connection closed".into(),
                });
            }
            if !line.starts_with(code) {
                return Err(LmtpError::Unexpected {
                    expected: code,
                    line: line.trim_end().to_string(),
                });
            }
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(());
            }
        }
    }

    /// Delivers `email` to every recipient: one transaction, one 250 per recipient.
    pub async fn deliver(&mut self, recipients: &[&str], email: &[u8]) -> Result<(), LmtpError> {
        let w = self.stream.get_mut();
        w.write_all(b"MAIL FROM:<sim@example.org>\r\n").await?;
        w.flush().await?;
        self.expect("250").await?;
        for rcpt in recipients {
            let w = self.stream.get_mut();
            w.write_all(format!("RCPT TO:<{rcpt}>\r\n").as_bytes())
                .await?;
            w.flush().await?;
            self.expect("250").await?;
        }
        let w = self.stream.get_mut();
        w.write_all(b"DATA\r\n").await?;
        w.flush().await?;
        self.expect("354").await?;
        let w = self.stream.get_mut();
        for line in email.split_inclusive(|&b| b == b'\n') {
            if line.first() == Some(&b'.') {
                w.write_all(b".").await?;
            }
            w.write_all(line).await?;
        }
        if !email.ends_with(b"\r\n") {
            w.write_all(b"\r\n").await?;
        }
        w.write_all(b".\r\n").await?;
        w.flush().await?;
        for _ in recipients {
            self.expect("250").await?;
        }
        Ok(())
    }

    /// Says QUIT.
    pub async fn quit(mut self) -> Result<(), LmtpError> {
        self.stream.get_mut().write_all(b"QUIT\r\n").await?;
        self.stream.get_mut().flush().await?;
        self.expect("221").await
    }
}
