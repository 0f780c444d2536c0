//! A raw IMAP connection over any byte stream, for what [`ImapClient`](crate::client::ImapClient)
//! does not do on purpose: stopping in the middle of a literal or of a response.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A raw IMAP connection: bytes written as given, lines read as they come.
pub struct Raw<S> {
    stream: S,
    buf: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Raw<S> {
    /// Reads the greeting of a connected stream.
    pub async fn connect(stream: S) -> std::io::Result<Raw<S>> {
        let mut raw = Raw {
            stream,
            buf: Vec::new(),
        };
        raw.line().await?;
        Ok(raw)
    }

    /// Logs in as `name` (the answer is read, not checked).
    pub async fn login(&mut self, name: &str, password: &str) -> std::io::Result<()> {
        self.send(format!("r1 LOGIN {name} \"{password}\"\r\n").as_bytes())
            .await?;
        self.until_tagged("r1").await?;
        Ok(())
    }

    /// Writes bytes.
    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    /// Reads one line (without a literal), or an error at end of stream.
    pub async fn line(&mut self) -> std::io::Result<Vec<u8>> {
        loop {
            if let Some(at) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let rest = self.buf.split_off(at + 2);
                return Ok(std::mem::replace(&mut self.buf, rest));
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads lines until the one tagged `tag`; returns it.
    pub async fn until_tagged(&mut self, tag: &str) -> std::io::Result<String> {
        loop {
            let line = self.line().await?;
            if line.starts_with(tag.as_bytes()) && line.get(tag.len()) == Some(&b' ') {
                return Ok(String::from_utf8_lossy(&line).trim_end().to_string());
            }
        }
    }

    /// Reads at least `bytes` bytes of whatever the server sends.
    pub async fn read_at_least(&mut self, bytes: usize) -> std::io::Result<usize> {
        let mut total = self.buf.len();
        self.buf.clear();
        let mut chunk = vec![0u8; 16 * 1024];
        while total < bytes {
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            total += n;
        }
        Ok(total)
    }
}
