//! A connection shim that makes the plugin server accept any `:authority`.
//!
//! # Why
//! gRPC clients talking over a Unix socket put *something* in the HTTP/2 `:authority`
//! pseudo-header: current Kubernetes sends `localhost`, but grpc-go 1.33 (and clients built on
//! it) send the socket path, such as `/var/run/kms.sock`. The `h2` crate under tonic parses
//! `:authority` as an `http::uri::Authority` while it turns a HEADERS frame into a request
//! (`h2::server::Peer::convert_poll_message`), and answers `RST_STREAM(PROTOCOL_ERROR)` when that
//! fails: a path is not an authority. Neither h2 nor hyper nor tonic has an option to relax it.
//! On a Unix socket the authority means nothing (there is one peer, and the server never looks at
//! it), so the plugin server accepts any.
//!
//! # How
//! [`AuthorityFix`] sits between the accepted socket and hyper and rewrites the client-to-server
//! byte stream at the HTTP/2 frame level:
//! - the connection preface and every frame other than HEADERS and CONTINUATION pass through
//!   unchanged (streamed, never buffered whole);
//! - each header block (HEADERS plus its CONTINUATION frames) is collected, its padding removed,
//!   HPACK-decoded with a decoder that mirrors the client's dynamic table, an `:authority` that
//!   is not a valid authority is replaced by `localhost`, and the block is re-encoded with
//!   static-table references and literals *without indexing* only. The server's decoder thus
//!   never holds a dynamic entry, so it cannot disagree with what the client's encoder assumes;
//!   the client's dynamic table size updates only concern the mirror.
//! - the new block goes out as HEADERS (same stream, END_STREAM and priority kept) and as many
//!   CONTINUATION frames as needed, each at most 16 384 bytes (the smallest maximum frame size
//!   a peer may announce, so always allowed).
//!
//! The server-to-client direction is untouched. A block that cannot be decoded, or that is larger
//! than [`MAX_HEADER_BLOCK`], ends the connection with an I/O error (the client would get a
//! connection error from h2 for the former anyway).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::hpack::{self, Decoder, Field};

/// The connection preface a client starts with (RFC 9113 §3.4).
const PREFACE_LEN: usize = 24;
/// Frame header length.
const HEAD_LEN: usize = 9;
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// Frames this shim writes are at most this long: every peer accepts it.
const MAX_OUT_FRAME: usize = 16_384;
/// The largest header block (encoded, all fragments) or header list (decoded, as RFC 9113
/// counts it) accepted: far above what the server itself accepts (hyper's default list limit is
/// 16 KiB, answered per stream), so it only stops memory abuse.
pub(crate) const MAX_HEADER_BLOCK: usize = 256 * 1024;
/// The largest dynamic table a client may ask the mirror for. The server announces the default
/// 4 096 bytes; a client that goes beyond it breaks the protocol, which the mirror tolerates up to
/// this bound (the server never sees the update).
const MAX_MIRROR_TABLE: usize = 64 * 1024;
/// What replaces an `:authority` that is not an authority.
const LOCALHOST: &[u8] = b"localhost";

/// An accepted connection whose client-to-server header blocks are rewritten so that any
/// `:authority` is acceptable (see the [module docs](self)).
#[derive(Debug)]
pub(crate) struct AuthorityFix<IO> {
    io: IO,
    parser: Parser,
    /// Bytes read from `io`, not parsed yet.
    input: Box<[u8]>,
    /// Bytes ready for the reader, from `out_pos` on.
    out: Vec<u8>,
    out_pos: usize,
    eof: bool,
}

impl<IO> AuthorityFix<IO> {
    pub(crate) fn new(io: IO) -> Self {
        Self {
            io,
            parser: Parser::new(),
            input: vec![0; 16 * 1024].into_boxed_slice(),
            out: Vec::new(),
            out_pos: 0,
            eof: false,
        }
    }
}

impl<IO: tonic::transport::server::Connected> tonic::transport::server::Connected
    for AuthorityFix<IO>
{
    type ConnectInfo = IO::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for AuthorityFix<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.out_pos < this.out.len() {
                let n = buf.remaining().min(this.out.len() - this.out_pos);
                buf.put_slice(&this.out[this.out_pos..this.out_pos + n]);
                this.out_pos += n;
                if this.out_pos == this.out.len() {
                    this.out.clear();
                    this.out_pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.eof || buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            let mut read = ReadBuf::new(&mut this.input);
            ready!(Pin::new(&mut this.io).poll_read(cx, &mut read))?;
            let filled = read.filled();
            if filled.is_empty() {
                // End of stream: a frame cut short is the server's to report.
                this.eof = true;
                continue;
            }
            this.parser.feed(filled, &mut this.out).map_err(|reason| {
                tracing::warn!(%reason, "KMS plugin: closing a connection with a bad header block");
                io::Error::new(io::ErrorKind::InvalidData, reason)
            })?;
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for AuthorityFix<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Where the parser is in the client's byte stream.
#[derive(Debug)]
enum Phase {
    /// In the connection preface; how many of its bytes have passed.
    Preface(usize),
    /// Collecting a frame header.
    Head { buf: [u8; HEAD_LEN], len: usize },
    /// Passing a frame's payload through; bytes left.
    Pass(usize),
    /// Collecting the payload of a HEADERS or CONTINUATION frame.
    Block { head: FrameHead, payload: Vec<u8> },
}

#[derive(Debug, Clone, Copy)]
struct FrameHead {
    len: usize,
    kind: u8,
    flags: u8,
    stream: u32,
}

/// A header block whose CONTINUATION frames are still to come.
#[derive(Debug)]
struct Pending {
    stream: u32,
    flags: u8,
    priority: Option<[u8; 5]>,
    fragment: Vec<u8>,
}

/// The client-to-server rewriter, independent of I/O (fed bytes, appends bytes).
#[derive(Debug)]
pub(crate) struct Parser {
    phase: Phase,
    pending: Option<Pending>,
    decoder: Decoder,
}

impl Parser {
    pub(crate) fn new() -> Self {
        Self {
            phase: Phase::Preface(0),
            pending: None,
            decoder: Decoder::new(MAX_MIRROR_TABLE),
        }
    }

    /// Consumes `input`, appending what the server should read to `out`.
    ///
    /// # Errors
    /// Why the stream cannot be rewritten (the connection must be closed).
    pub(crate) fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        while !input.is_empty() {
            match &mut self.phase {
                Phase::Preface(seen) => {
                    let n = (PREFACE_LEN - *seen).min(input.len());
                    out.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    *seen += n;
                    if *seen == PREFACE_LEN {
                        self.phase = Phase::new_head();
                    }
                }
                Phase::Head { buf, len } => {
                    let n = (HEAD_LEN - *len).min(input.len());
                    buf[*len..*len + n].copy_from_slice(&input[..n]);
                    *len += n;
                    input = &input[n..];
                    if *len == HEAD_LEN {
                        let raw = *buf;
                        self.start_frame(&raw, out)?;
                    }
                }
                Phase::Pass(left) => {
                    let n = (*left).min(input.len());
                    out.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    *left -= n;
                    if *left == 0 {
                        self.phase = Phase::new_head();
                    }
                }
                Phase::Block { head, payload } => {
                    let n = (head.len - payload.len()).min(input.len());
                    payload.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    if payload.len() == head.len {
                        let head = *head;
                        let payload = std::mem::take(payload);
                        self.phase = Phase::new_head();
                        self.end_frame(head, payload, out)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// A frame whose header is complete: passed on, or collected when it carries a header
    /// block.
    fn start_frame(&mut self, raw: &[u8; HEAD_LEN], out: &mut Vec<u8>) -> Result<(), String> {
        let head = FrameHead::parse(raw);
        if self.pending.is_some() && head.kind != CONTINUATION {
            return Err(format!(
                "frame type {} inside a header block (expected CONTINUATION)",
                head.kind
            ));
        }
        if !matches!(head.kind, HEADERS | CONTINUATION) {
            out.extend_from_slice(raw);
            self.phase = if head.len == 0 {
                Phase::new_head()
            } else {
                Phase::Pass(head.len)
            };
            return Ok(());
        }
        let collected = self.pending.as_ref().map_or(0, |p| p.fragment.len());
        if collected + head.len > MAX_HEADER_BLOCK {
            return Err(format!("header block larger than {MAX_HEADER_BLOCK} bytes"));
        }
        if head.len == 0 {
            self.phase = Phase::new_head();
            return self.end_frame(head, Vec::new(), out);
        }
        self.phase = Phase::Block {
            head,
            payload: Vec::with_capacity(head.len),
        };
        Ok(())
    }

    /// A complete HEADERS or CONTINUATION frame.
    fn end_frame(
        &mut self,
        head: FrameHead,
        payload: Vec<u8>,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        let mut pending = if head.kind == HEADERS {
            let mut body = payload.as_slice();
            let mut pad = 0usize;
            if head.flags & PADDED != 0 {
                let (&p, rest) = body
                    .split_first()
                    .ok_or("PADDED HEADERS frame without a pad length")?;
                pad = usize::from(p);
                body = rest;
            }
            let priority = if head.flags & PRIORITY != 0 {
                let (p, rest) = body
                    .split_first_chunk::<5>()
                    .ok_or("HEADERS frame too short for its priority fields")?;
                body = rest;
                Some(*p)
            } else {
                None
            };
            if pad > body.len() {
                return Err("HEADERS padding longer than the frame".to_owned());
            }
            Pending {
                stream: head.stream,
                flags: head.flags & END_STREAM,
                priority,
                fragment: body[..body.len() - pad].to_vec(),
            }
        } else {
            let Some(mut pending) = self.pending.take() else {
                return Err("CONTINUATION frame without a header block".to_owned());
            };
            if pending.stream != head.stream {
                return Err("CONTINUATION frame on another stream".to_owned());
            }
            pending.fragment.extend_from_slice(&payload);
            pending
        };
        if head.flags & END_HEADERS == 0 {
            self.pending = Some(pending);
            return Ok(());
        }
        let mut fields = self
            .decoder
            .decode(&pending.fragment, MAX_HEADER_BLOCK)
            .map_err(|e| e.to_string())?;
        fix_authority(&mut fields);
        pending.fragment.clear();
        hpack::encode(&fields, &mut pending.fragment);
        write_block(&pending, out);
        Ok(())
    }
}

impl Phase {
    fn new_head() -> Self {
        Phase::Head {
            buf: [0; HEAD_LEN],
            len: 0,
        }
    }
}

impl FrameHead {
    fn parse(b: &[u8; HEAD_LEN]) -> Self {
        Self {
            len: (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]),
            kind: b[3],
            flags: b[4],
            stream: u32::from_be_bytes([b[5] & 0x7f, b[6], b[7], b[8]]),
        }
    }
}

/// Replaces every `:authority` that `http` (and so h2) would refuse with `localhost`.
fn fix_authority(fields: &mut [Field]) {
    for field in fields.iter_mut().filter(|f| f.name == b":authority") {
        if http::uri::Authority::try_from(field.value.as_slice()).is_err() {
            tracing::debug!(
                len = field.value.len(),
                "KMS plugin: replacing a malformed :authority with localhost"
            );
            field.value = LOCALHOST.to_vec();
        }
    }
}

/// Writes a header block as HEADERS and CONTINUATION frames of at most [`MAX_OUT_FRAME`] bytes.
fn write_block(block: &Pending, out: &mut Vec<u8>) {
    let priority: &[u8] = block.priority.as_ref().map_or(&[], |p| &p[..]);
    let first_room = MAX_OUT_FRAME - priority.len();
    let (first, mut rest) = block
        .fragment
        .split_at(first_room.min(block.fragment.len()));
    let mut flags = block.flags;
    if block.priority.is_some() {
        flags |= PRIORITY;
    }
    if rest.is_empty() {
        flags |= END_HEADERS;
    }
    put_head(
        out,
        priority.len() + first.len(),
        HEADERS,
        flags,
        block.stream,
    );
    out.extend_from_slice(priority);
    out.extend_from_slice(first);
    while !rest.is_empty() {
        let (chunk, after) = rest.split_at(MAX_OUT_FRAME.min(rest.len()));
        rest = after;
        let flags = if rest.is_empty() { END_HEADERS } else { 0 };
        put_head(out, chunk.len(), CONTINUATION, flags, block.stream);
        out.extend_from_slice(chunk);
    }
}

fn put_head(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream: u32) {
    let len = u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes();
    out.extend_from_slice(&len[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        put_head(&mut out, payload.len(), kind, flags, stream);
        out.extend_from_slice(payload);
        out
    }

    fn field(name: &str, value: &str) -> Field {
        Field {
            name: name.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
            sensitive: false,
        }
    }

    /// Splits the server-side stream into frames (after the preface).
    fn frames(bytes: &[u8]) -> Vec<(FrameHead, Vec<u8>)> {
        assert!(bytes.starts_with(PREFACE));
        let mut rest = &bytes[PREFACE.len()..];
        let mut out = Vec::new();
        while !rest.is_empty() {
            let head = FrameHead::parse(rest[..HEAD_LEN].try_into().expect("head"));
            out.push((head, rest[HEAD_LEN..HEAD_LEN + head.len].to_vec()));
            rest = &rest[HEAD_LEN + head.len..];
        }
        out
    }

    /// Feeds `input` in pieces of `step` bytes.
    fn rewrite(input: &[u8], step: usize) -> Result<Vec<u8>, String> {
        let mut parser = Parser::new();
        let mut out = Vec::new();
        for piece in input.chunks(step) {
            parser.feed(piece, &mut out)?;
        }
        Ok(out)
    }

    #[test]
    fn a_socket_path_authority_becomes_localhost_and_other_frames_pass() {
        let mut block = Vec::new();
        hpack::encode(
            &[
                field(":method", "POST"),
                field(":authority", "/tmp/kms.sock"),
                field(":path", "/v2.KeyManagementService/Status"),
            ],
            &mut block,
        );
        // PADDED and PRIORITY, split over a CONTINUATION.
        let (a, b) = block.split_at(5);
        let mut headers = vec![3u8];
        headers.extend_from_slice(&[0, 0, 0, 0, 16]);
        headers.extend_from_slice(a);
        headers.extend_from_slice(&[0, 0, 0]);
        let mut input = PREFACE.to_vec();
        input.extend(frame(0x4, 0, 0, &[0, 3, 0, 0, 0, 100])); // SETTINGS
        input.extend(frame(HEADERS, PADDED | PRIORITY | END_STREAM, 1, &headers));
        input.extend(frame(CONTINUATION, END_HEADERS, 1, b));
        input.extend(frame(0x0, END_STREAM, 1, b"\0\0\0\0\0")); // DATA
        input.extend(frame(0x6, 0, 0, &[7; 8])); // PING
        for step in [1, 2, 7, 9, 10, 4096] {
            let out = rewrite(&input, step).expect("rewritten");
            let frames = frames(&out);
            let kinds: Vec<u8> = frames.iter().map(|(h, _)| h.kind).collect();
            assert_eq!(kinds, [0x4, HEADERS, 0x0, 0x6], "step {step}");
            let (head, payload) = &frames[1];
            assert_eq!(head.flags, END_STREAM | PRIORITY | END_HEADERS);
            assert_eq!(head.stream, 1);
            assert_eq!(&payload[..5], &[0, 0, 0, 0, 16]);
            let mut decoder = Decoder::new(4096);
            let fields = decoder.decode(&payload[5..], 1 << 20).expect("decodes");
            assert_eq!(fields[1], field(":authority", "localhost"));
            assert_eq!(fields[2], field(":path", "/v2.KeyManagementService/Status"));
            assert_eq!(frames[2].1, b"\0\0\0\0\0");
            assert_eq!(frames[3].1, [7; 8]);
        }
    }

    #[test]
    fn a_valid_authority_is_kept_and_dynamic_references_resolve() {
        // The client indexes its authority, then refers to it: the server gets literals.
        let mut first = vec![0x83, 0x41];
        first.push(13);
        first.extend_from_slice(b"/tmp/kms.sock");
        let mut input = PREFACE.to_vec();
        input.extend(frame(HEADERS, END_HEADERS, 1, &first));
        input.extend(frame(HEADERS, END_HEADERS, 3, &[0x83, 0xbe]));
        let mut block = Vec::new();
        hpack::encode(&[field(":authority", "localhost:1234")], &mut block);
        input.extend(frame(HEADERS, END_HEADERS, 5, &block));
        let out = rewrite(&input, 3).expect("rewritten");
        let mut decoder = Decoder::new(4096);
        for (i, (_, payload)) in frames(&out).iter().enumerate() {
            let fields = decoder.decode(payload, 1 << 20).expect("decodes");
            let expected = if i == 2 {
                "localhost:1234"
            } else {
                "localhost"
            };
            assert_eq!(
                fields.last(),
                Some(&field(":authority", expected)),
                "block {i}"
            );
        }
        assert_eq!(decoder.table_size(), 0, "the server's table stays empty");
    }

    #[test]
    fn a_large_block_is_split_into_frames_the_server_accepts() {
        let fields: Vec<Field> = (0..40)
            .map(|i| field(&format!("x-header-{i}"), &"v".repeat(1000)))
            .collect();
        let mut block = Vec::new();
        hpack::encode(&fields, &mut block);
        let mut input = PREFACE.to_vec();
        input.extend(frame(HEADERS, 0, 1, &block[..10_000]));
        input.extend(frame(CONTINUATION, 0, 1, &block[10_000..30_000]));
        input.extend(frame(CONTINUATION, END_HEADERS, 1, &block[30_000..]));
        let out = rewrite(&input, 5000).expect("rewritten");
        let frames = frames(&out);
        assert!(frames.len() >= 3);
        let mut joined = Vec::new();
        for (i, (head, payload)) in frames.iter().enumerate() {
            assert!(head.len <= MAX_OUT_FRAME);
            assert_eq!(head.kind, if i == 0 { HEADERS } else { CONTINUATION });
            assert_eq!(head.flags & END_HEADERS != 0, i == frames.len() - 1);
            joined.extend_from_slice(payload);
        }
        let decoded = Decoder::new(4096)
            .decode(&joined, 1 << 20)
            .expect("decodes");
        assert_eq!(decoded, fields);
    }

    #[test]
    fn broken_header_blocks_end_the_connection() {
        let cases: Vec<Vec<u8>> = vec![
            // HPACK garbage.
            frame(HEADERS, END_HEADERS, 1, &[0x80]),
            // Padding longer than the frame.
            frame(HEADERS, END_HEADERS | PADDED, 1, &[9, 0x82]),
            // Priority fields missing.
            frame(HEADERS, END_HEADERS | PRIORITY, 1, &[0, 0]),
            // CONTINUATION without HEADERS, on another stream, or interrupted.
            frame(CONTINUATION, END_HEADERS, 1, &[0x82]),
            [
                frame(HEADERS, 0, 1, &[0x82]),
                frame(CONTINUATION, END_HEADERS, 3, &[0x82]),
            ]
            .concat(),
            [frame(HEADERS, 0, 1, &[0x82]), frame(0x6, 0, 0, &[0; 8])].concat(),
            // A block over the limit, refused before it is buffered.
            {
                let mut head = Vec::new();
                put_head(&mut head, MAX_HEADER_BLOCK + 1, HEADERS, 0, 1);
                head
            },
        ];
        for case in cases {
            let input = [PREFACE, &case].concat();
            assert!(rewrite(&input, 1).is_err(), "{case:02x?}");
        }
    }
}
