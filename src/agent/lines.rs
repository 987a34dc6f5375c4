//! Splits an agent's stdout into lines, with a bound on line length so that a runaway
//! agent cannot exhaust the runtime's memory.

use std::pin::Pin;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// One item read from the agent's output.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A complete line, without its newline.
    Text(String),
    /// A line longer than the limit; its bytes were dropped up to the next newline.
    TooLong(usize),
    /// A line that is not UTF-8.
    NotUtf8,
}

/// Reads newline-terminated lines of at most `max_len` bytes.
pub struct LineReader {
    reader: BufReader<Pin<Box<dyn AsyncRead + Send>>>,
    max_len: usize,
    buffer: Vec<u8>,
    /// Bytes of the current line dropped so far, because it is over `max_len`. Kept here,
    /// not in the future, so a cancelled read resumes the count.
    dropped: usize,
}

impl LineReader {
    /// Reads from `stream`.
    pub fn new(stream: Pin<Box<dyn AsyncRead + Send>>, max_len: usize) -> Self {
        Self {
            reader: BufReader::with_capacity(64 * 1024, stream),
            max_len,
            buffer: Vec::new(),
            dropped: 0,
        }
    }

    /// The next line, or `None` at the end of the stream.
    ///
    /// Cancel safe: bytes already consumed stay in the reader's own buffer, and the state
    /// of a partly read line in `self`, so a `select!` that drops this future loses nothing.
    pub async fn next_line(&mut self) -> std::io::Result<Option<Line>> {
        loop {
            let available = self.reader.fill_buf().await?;
            if available.is_empty() {
                // End of stream: a last line without a newline still counts.
                if self.buffer.is_empty() && self.dropped == 0 {
                    return Ok(None);
                }
                return Ok(Some(self.finish()));
            }
            let (chunk, found_newline) = match available.iter().position(|&b| b == b'\n') {
                Some(at) => (&available[..at], true),
                None => (available, false),
            };
            if self.dropped > 0 || self.buffer.len() + chunk.len() > self.max_len {
                self.dropped = self.dropped.saturating_add(self.buffer.len() + chunk.len());
                self.buffer.clear();
            } else {
                self.buffer.extend_from_slice(chunk);
            }
            let consumed = chunk.len() + usize::from(found_newline);
            self.reader.consume(consumed);
            if found_newline {
                return Ok(Some(self.finish()));
            }
        }
    }

    fn finish(&mut self) -> Line {
        let dropped = std::mem::take(&mut self.dropped);
        if dropped > 0 {
            return Line::TooLong(dropped);
        }
        let bytes = std::mem::take(&mut self.buffer);
        match String::from_utf8(bytes) {
            Ok(mut text) => {
                if text.ends_with('\r') {
                    text.pop();
                }
                Line::Text(text)
            }
            Err(_) => Line::NotUtf8,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read_all(input: &'static [u8], max_len: usize) -> Vec<Line> {
        let mut reader = LineReader::new(Box::pin(input), max_len);
        let mut lines = Vec::new();
        while let Some(line) = reader.next_line().await.unwrap() {
            lines.push(line);
        }
        lines
    }

    #[tokio::test]
    async fn splits_lines_and_bounds_their_length() {
        let lines = read_all(b"one\r\ntwo\n0123456789abc\nlast", 10).await;
        assert_eq!(
            lines,
            [
                Line::Text("one".into()),
                Line::Text("two".into()),
                Line::TooLong(13),
                Line::Text("last".into()),
            ]
        );
        assert_eq!(
            read_all(b"\xff\xfe\nok\n", 10).await,
            [Line::NotUtf8, Line::Text("ok".into())]
        );
        assert!(read_all(b"", 10).await.is_empty());
    }

    #[tokio::test]
    async fn a_cancelled_read_keeps_the_count_of_an_oversized_line() {
        let (mut writer, reader) = tokio::io::duplex(64);
        let mut lines = LineReader::new(Box::pin(reader), 10);
        use tokio::io::AsyncWriteExt;
        writer.write_all(&[b'x'; 40]).await.unwrap();
        // The line has no end yet: the read waits, and is given up.
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(50), lines.next_line()).await;
        assert!(waited.is_err());
        writer.write_all(b"yyyy\nok\n").await.unwrap();
        assert_eq!(lines.next_line().await.unwrap(), Some(Line::TooLong(44)));
        assert_eq!(
            lines.next_line().await.unwrap(),
            Some(Line::Text("ok".into()))
        );
    }
}
