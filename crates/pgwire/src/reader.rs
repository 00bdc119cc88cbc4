//! Reads whole messages from a byte stream into an internal buffer.

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

use crate::WireError;
use crate::frame::{Frame, HEADER, Side};
use crate::initial::Initial;
use crate::limits::{Limits, MAX_STARTUP_BYTES};

/// The most to ask the kernel for at a time. Large messages grow the buffer in steps of this
/// size, so a peer that declares a 64 MiB message and sends nothing costs 64 KiB, not 64 MiB.
const READ_CHUNK: usize = 64 * 1024;
/// The least to ask for while a message is incomplete or data is streaming in.
const MIN_READ: usize = 8 * 1024;
/// What an idle connection waits with: small, so that thousands of idle sessions cost little
/// memory (the buffer must exist before the read that waits).
const IDLE_READ: usize = 1024;

/// Reads complete messages from `R`.
///
/// Cancel safety: [`next_frame`](Self::next_frame) and [`read_initial`](Self::read_initial)
/// are cancel-safe. Bytes are only ever appended to the internal buffer by
/// `AsyncReadExt::read_buf` (itself cancel-safe) and removed when a whole message is returned,
/// so dropping the future between polls loses nothing; the next call resumes where the last
/// one stopped. That makes the reader safe to use as a `tokio::select!` branch.
///
/// The reader does not implement `AsyncRead`: the buffered bytes can only leave it as
/// validated messages.
///
/// Stalls: on the frontend side, with [`Limits::message_timeout`] set, a message whose first
/// byte has arrived must arrive whole within that time, or the read fails with
/// [`WireError::Stalled`] (a client that starts a message and stops would otherwise hold its
/// buffer and its session forever). The clock starts at the later of the message's first
/// byte and the start of the current call, so time the caller spends between calls (a
/// statement held for approval, a slow server) is never charged to the peer; a caller that
/// drops and restarts calls restarts that clock, so it should keep one call alive while it
/// waits for other events (as `tokio::select!` over a pinned future does).
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    buf: BytesMut,
    side: Side,
    limits: Limits,
    /// The last read filled all the room it had: more is probably waiting, so read big.
    streaming: bool,
    /// When the first byte of the (incomplete) message at the front of the buffer arrived.
    started: Option<Instant>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// A reader of the messages `side` sends, bounded by `limits`.
    pub fn new(inner: R, side: Side, limits: Limits) -> Self {
        Self {
            inner,
            buf: BytesMut::new(),
            side,
            limits,
            streaming: false,
            started: None,
        }
    }

    /// The next complete message, or `None` when the peer closed the connection cleanly
    /// between messages. Cancel-safe.
    pub async fn next_frame(&mut self) -> Result<Option<Frame>, WireError> {
        let called = self.timed().then(Instant::now);
        loop {
            if let Some(frame) = self.take_frame()? {
                return Ok(Some(frame));
            }
            let wanted = self.wanted()?;
            if !self.fill_in_time(wanted, called).await? {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(WireError::UnexpectedEof)
                };
            }
        }
    }

    /// Whether a complete message (or a header that is already known to be invalid) is
    /// buffered, so the next [`next_frame`](Self::next_frame) returns without waiting. The
    /// relay flushes its writes when this is false.
    pub fn has_complete_frame(&self) -> bool {
        match self.declared() {
            Ok(Some(total)) => self.buf.len() >= total,
            Ok(None) => false,
            Err(_) => true,
        }
    }

    /// Reads one untagged startup-phase packet (StartupMessage, SSLRequest, GSSENCRequest,
    /// CancelRequest), at most [`MAX_STARTUP_BYTES`]. `None` on a clean close before any
    /// byte. Cancel-safe.
    pub async fn read_initial(&mut self) -> Result<Option<Initial>, WireError> {
        let called = self.timed().then(Instant::now);
        loop {
            if self.buf.len() >= 4 {
                let len = i32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
                let total = usize::try_from(len)
                    .ok()
                    .filter(|n| (8..=MAX_STARTUP_BYTES).contains(n))
                    .ok_or(WireError::BadLength {
                        len: i64::from(len),
                    })?;
                if self.buf.len() >= total {
                    let mut packet = self.buf.split_to(total).freeze();
                    packet.advance(4);
                    self.taken();
                    return Initial::parse(packet).map(Some);
                }
                let wanted = total.saturating_sub(self.buf.len());
                if !self.fill_in_time(wanted, called).await? {
                    return Err(WireError::UnexpectedEof);
                }
            } else if !self.fill_in_time(4 - self.buf.len(), called).await? {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(WireError::UnexpectedEof)
                };
            }
        }
    }

    /// Gives the stream back (for the TLS handshake after an SSLRequest). Refuses when the
    /// peer has already sent more bytes: they were sent in plaintext and must not be taken
    /// as if they had come over TLS (CVE-2021-23214).
    pub fn into_inner(self) -> Result<R, WireError> {
        if self.buf.is_empty() {
            Ok(self.inner)
        } else {
            Err(WireError::BufferedBeforeTls)
        }
    }

    /// The number of bytes buffered but not yet returned as messages.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The total size of the message at the front of the buffer, once its header is there.
    fn declared(&self) -> Result<Option<usize>, WireError> {
        let Some(header) = self.buf.get(..HEADER) else {
            return Ok(None);
        };
        let t = header[0];
        let len = i32::from_be_bytes([header[1], header[2], header[3], header[4]]);
        let max = self
            .limits
            .max_for(self.side, t)
            .ok_or(WireError::UnknownTag { tag: char::from(t) })?;
        let body_and_len =
            usize::try_from(len)
                .ok()
                .filter(|n| *n >= 4)
                .ok_or(WireError::BadLength {
                    len: i64::from(len),
                })?;
        if body_and_len > max {
            return Err(WireError::TooLarge {
                tag: char::from(t),
                len: body_and_len,
                max,
            });
        }
        // Cannot overflow: body_and_len <= max, and max is far below usize::MAX.
        Ok(body_and_len.checked_add(1))
    }

    fn take_frame(&mut self) -> Result<Option<Frame>, WireError> {
        match self.declared()? {
            Some(total) if self.buf.len() >= total => {
                let raw = self.buf.split_to(total).freeze();
                self.taken();
                Ok(Some(Frame::from_validated(raw)))
            }
            _ => Ok(None),
        }
    }

    /// A whole message left the buffer: the next one, if any of it is buffered, starts now
    /// (no earlier than the next call, which is when its clock starts anyway).
    fn taken(&mut self) {
        if self.timed() {
            self.started = (!self.buf.is_empty()).then(Instant::now);
        }
    }

    /// Whether messages have a deadline: on the frontend side, with a timeout.
    fn timed(&self) -> bool {
        self.side == Side::Frontend && self.limits.message_timeout.is_some()
    }

    /// When the message now arriving must be complete, once part of it is buffered.
    fn deadline(&self, called: Option<Instant>) -> Option<Instant> {
        let timeout = self.limits.message_timeout?;
        self.started?.max(called?).checked_add(timeout)
    }

    /// [`fill`](Self::fill), within the deadline of the message now arriving (see the type's
    /// docs); records when a message's first byte arrived. `called`: when the current call
    /// began, for a reader with deadlines.
    async fn fill_in_time(
        &mut self,
        wanted: usize,
        called: Option<Instant>,
    ) -> Result<bool, WireError> {
        let filled = match self.deadline(called) {
            None => self.fill(wanted).await?,
            Some(at) => match tokio::time::timeout_at(at, self.fill(wanted)).await {
                Ok(filled) => filled?,
                Err(_) => {
                    return Err(WireError::Stalled {
                        after: self.limits.message_timeout.unwrap_or_default(),
                    });
                }
            },
        };
        if called.is_some() && self.started.is_none() && !self.buf.is_empty() {
            self.started = Some(Instant::now());
        }
        Ok(filled)
    }

    /// How many more bytes the front message needs (at least one, to make progress).
    fn wanted(&self) -> Result<usize, WireError> {
        Ok(match self.declared()? {
            Some(total) => total.saturating_sub(self.buf.len()).max(1),
            None => HEADER.saturating_sub(self.buf.len()).max(1),
        })
    }

    /// Reads once, having made room for `wanted` more bytes (within [`MIN_READ`] and
    /// [`READ_CHUNK`]), or only [`IDLE_READ`] when waiting between messages. `false` at end
    /// of stream.
    async fn fill(&mut self, wanted: usize) -> Result<bool, WireError> {
        let room = if self.buf.is_empty() && !self.streaming {
            // Drop what an earlier large message left allocated before waiting, possibly
            // for a long time.
            self.buf = BytesMut::new();
            IDLE_READ
        } else {
            wanted.clamp(MIN_READ, READ_CHUNK)
        };
        self.buf.reserve(room);
        let spare = self.buf.capacity().saturating_sub(self.buf.len());
        let n = self.inner.read_buf(&mut self.buf).await?;
        self.streaming = n >= spare;
        Ok(n > 0)
    }
}
