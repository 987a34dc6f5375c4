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
}

impl LineReader {
    /// Reads from `stream`.
    pub fn new(stream: Pin<Box<dyn AsyncRead + Send>>, max_len: usize) -> Self {
        Self {
            reader: BufReader::with_capacity(64 * 1024, stream),
            max_len,
            buffer: Vec::new(),
        }
    }

    /// The next line, or `None` at the end of the stream.
    ///
    /// Cancel safe: bytes already consumed stay in the reader's own buffer, so a `select!`
    /// that drops this future loses nothing.
    pub async fn next_line(&mut self) -> std::io::Result<Option<Line>> {
        let mut dropped = 0usize;
        loop {
            let available = self.reader.fill_buf().await?;
            if available.is_empty() {
                // End of stream: a last line without a newline still counts.
                if self.buffer.is_empty() && dropped == 0 {
                    return Ok(None);
                }
                return Ok(Some(self.finish(dropped)));
            }
            let (chunk, found_newline) = match available.iter().position(|&b| b == b'\n') {
                Some(at) => (&available[..at], true),
                None => (available, false),
            };
            if dropped > 0 || self.buffer.len() + chunk.len() > self.max_len {
                dropped += self.buffer.len() + chunk.len();
                self.buffer.clear();
            } else {
                self.buffer.extend_from_slice(chunk);
            }
            let consumed = chunk.len() + usize::from(found_newline);
            self.reader.consume(consumed);
            if found_newline {
                return Ok(Some(self.finish(dropped)));
            }
        }
    }

    fn finish(&mut self, dropped: usize) -> Line {
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
}
