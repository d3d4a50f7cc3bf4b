//! MCP over stdio: newline-delimited JSON-RPC on stdin/stdout.
//!
//! We use our own line transport rather than rmcp's so that bad input gets the answer JSON-RPC
//! prescribes (see [`super::jsonrpc`]) instead of being dropped, and so a line longer than the
//! request limit is refused without ever being buffered whole. Messages that decode are handed
//! to rmcp unchanged; replies are encoded with rmcp's own codec.

use std::io;
use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use rmcp::model::{ClientJsonRpcMessage, ErrorCode, ServerJsonRpcMessage};
use rmcp::service::{RoleServer, serve_server_with_ct};
use rmcp::transport::Transport;
use rmcp::transport::async_rw::JsonRpcMessageCodec;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Mutex;
use tokio_util::bytes::{Buf, BytesMut};
use tokio_util::codec::{Decoder, FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;

use super::jsonrpc::{Decoded, decode};
use crate::access::Caller;
use crate::gate::Gate;
use crate::mcp::McpServer;

/// One unit read from the input.
#[derive(Debug)]
enum Frame {
    Line(BytesMut),
    /// A line longer than the limit; it is skipped up to its newline, never buffered.
    Oversized,
}

/// Splits input into lines of at most `max` bytes.
struct BoundedLines {
    max: usize,
    /// Dropping the rest of an oversized line until its newline.
    discarding: bool,
    /// How far the current buffer has been searched for a newline already.
    searched: usize,
}

impl Decoder for BoundedLines {
    type Item = Frame;
    type Error = io::Error;

    fn decode(&mut self, buffer: &mut BytesMut) -> io::Result<Option<Frame>> {
        loop {
            let newline = buffer[self.searched..]
                .iter()
                .position(|byte| *byte == b'\n')
                .map(|offset| offset + self.searched);
            return match newline {
                Some(end) if self.discarding => {
                    // The end of a line already reported as oversized: drop it and go on with
                    // whatever follows it in the buffer.
                    buffer.advance(end + 1);
                    self.searched = 0;
                    self.discarding = false;
                    continue;
                }
                Some(end) if end > self.max => {
                    buffer.advance(end + 1);
                    self.searched = 0;
                    Ok(Some(Frame::Oversized))
                }
                Some(end) => {
                    self.searched = 0;
                    Ok(Some(Frame::Line(buffer.split_to(end + 1))))
                }
                None if self.discarding => {
                    buffer.clear();
                    self.searched = 0;
                    Ok(None)
                }
                None if buffer.len() > self.max => {
                    buffer.clear();
                    self.searched = 0;
                    self.discarding = true;
                    Ok(Some(Frame::Oversized))
                }
                None => {
                    self.searched = buffer.len();
                    Ok(None)
                }
            };
        }
    }

    fn decode_eof(&mut self, buffer: &mut BytesMut) -> io::Result<Option<Frame>> {
        if let Some(frame) = self.decode(buffer)? {
            return Ok(Some(frame));
        }
        // Input that ends without a newline is still a message (possibly a cut-off one, which
        // then gets its parse error).
        if buffer.is_empty() || self.discarding {
            buffer.clear();
            return Ok(None);
        }
        self.searched = 0;
        Ok(Some(Frame::Line(buffer.split())))
    }
}

type Writer<W> = Arc<Mutex<FramedWrite<W, JsonRpcMessageCodec<ServerJsonRpcMessage>>>>;

/// A JSON-lines transport over any byte streams (stdio in production, pipes in tests).
pub(crate) struct LineTransport<R, W> {
    lines: FramedRead<R, BoundedLines>,
    writer: Writer<W>,
    max_line: usize,
}

impl<R, W> LineTransport<R, W>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    pub(crate) fn new(reader: R, writer: W, max_line: usize) -> Self {
        let decoder = BoundedLines {
            max: max_line,
            discarding: false,
            searched: 0,
        };
        Self {
            lines: FramedRead::new(reader, decoder),
            writer: Arc::new(Mutex::new(FramedWrite::new(
                writer,
                JsonRpcMessageCodec::default(),
            ))),
            max_line,
        }
    }

    /// Answers bad input without blocking the read loop (`receive` must stay cancel-safe).
    fn answer(&self, message: ServerJsonRpcMessage) {
        let writer = Arc::clone(&self.writer);
        tokio::spawn(async move {
            if let Err(error) = writer.lock().await.send(message).await {
                tracing::debug!(%error, "could not answer bad input");
            }
        });
    }
}

impl<R, W> Transport<RoleServer> for LineTransport<R, W>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    type Error = io::Error;

    fn send(
        &mut self,
        item: ServerJsonRpcMessage,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let writer = Arc::clone(&self.writer);
        async move {
            writer
                .lock()
                .await
                .send(item)
                .await
                .map_err(io::Error::from)
        }
    }

    async fn receive(&mut self) -> Option<ClientJsonRpcMessage> {
        loop {
            let frame = match self.lines.next().await? {
                Ok(frame) => frame,
                Err(error) => {
                    tracing::error!(%error, "cannot read stdin");
                    return None;
                }
            };
            let line = match frame {
                Frame::Line(line) => line,
                Frame::Oversized => {
                    let error = rmcp::ErrorData::new(
                        ErrorCode::INVALID_REQUEST,
                        format!(
                            "Invalid Request: the message is longer than limits.max_request_bytes \
                             ({} bytes) and was discarded",
                            self.max_line
                        ),
                        None,
                    );
                    self.answer(ServerJsonRpcMessage::error(error, None));
                    continue;
                }
            };
            let line = line.strip_suffix(b"\n").unwrap_or(&line);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match decode(line) {
                Decoded::Message(message) => return Some(*message),
                Decoded::BadNotification(_) => continue,
                Decoded::Reject(rejected) => self.answer(rejected.into_message()),
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.writer
            .lock()
            .await
            .close()
            .await
            .map_err(io::Error::from)
    }
}

/// Serves one MCP session on stdin/stdout until the client closes stdin or `shutdown` fires.
pub(crate) async fn serve(gate: Arc<Gate>, max_line: usize, shutdown: CancellationToken) {
    let (reader, writer) = rmcp::transport::stdio_pipes();
    let transport = LineTransport::new(reader, writer, max_line);
    let caller = Caller::stdio(gate.policy().local_role());
    let server = McpServer::for_session(gate, caller);
    match serve_server_with_ct(server, transport, shutdown).await {
        Ok(running) => {
            if let Err(error) = running.waiting().await {
                tracing::error!(%error, "stdio session ended with an error");
            }
        }
        Err(error) => tracing::info!(%error, "stdio session ended before it began"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(input: &[u8], max: usize) -> Vec<String> {
        let mut decoder = BoundedLines {
            max,
            discarding: false,
            searched: 0,
        };
        let mut buffer = BytesMut::new();
        let mut out = Vec::new();
        // Feed byte by byte to exercise partial reads.
        for byte in input {
            buffer.extend_from_slice(&[*byte]);
            while let Some(frame) = decoder.decode(&mut buffer).expect("decode") {
                out.push(render(frame));
            }
        }
        while let Some(frame) = decoder.decode_eof(&mut buffer).expect("eof") {
            out.push(render(frame));
        }
        out
    }

    fn render(frame: Frame) -> String {
        match frame {
            Frame::Line(line) => String::from_utf8_lossy(&line).into_owned(),
            Frame::Oversized => "<oversized>".into(),
        }
    }

    #[test]
    fn splits_lines_and_keeps_an_unterminated_tail() {
        assert_eq!(frames(b"a\nbb\ncut", 10), ["a\n", "bb\n", "cut"]);
    }

    #[test]
    fn oversized_lines_are_reported_once_and_skipped() {
        assert_eq!(
            frames(b"ok\n0123456789abcdef\nnext\n", 8),
            ["ok\n", "<oversized>", "next\n"]
        );
    }

    #[test]
    fn a_line_buffered_behind_a_discarded_one_is_decoded() {
        let mut decoder = BoundedLines {
            max: 8,
            discarding: false,
            searched: 0,
        };
        let mut buffer = BytesMut::from(&b"0123456789abcdef"[..]);
        assert!(matches!(
            decoder.decode(&mut buffer),
            Ok(Some(Frame::Oversized))
        ));
        // The rest of the long line and the next message arrive in one read.
        buffer.extend_from_slice(b"tail\nnext\n");
        match decoder.decode(&mut buffer) {
            Ok(Some(Frame::Line(line))) => assert_eq!(&line[..], b"next\n"),
            other => panic!("expected the next line, got {other:?}"),
        }
    }
}
