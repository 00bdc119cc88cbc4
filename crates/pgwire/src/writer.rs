//! Buffers outgoing messages and writes them in batches.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::frame::Frame;

/// Messages at least this large are queued as they are instead of being copied into the
/// batch buffer.
const COPY_LIMIT: usize = 16 * 1024;
/// The batch buffer's first allocation, enough for a typical burst of small messages.
const BATCH: usize = 4 * 1024;

/// Queues messages and writes them with as few system calls as possible.
///
/// Cancel safety: [`flush`](Self::flush) is cancel-safe in the sense that matters for a relay:
/// it writes with `AsyncWriteExt::write_buf`, which advances the queued bytes by exactly what
/// the kernel accepted, so a dropped flush loses and repeats nothing, and the next flush
/// continues mid-message. Messages therefore never interleave on the wire.
///
/// The writer does not implement `AsyncWrite`: only whole messages can be queued.
#[derive(Debug)]
pub struct FrameWriter<W> {
    inner: W,
    /// Large messages, and frozen batches queued ahead of them, in wire order.
    queue: VecDeque<Bytes>,
    /// Small messages after the last queued large one.
    batch: BytesMut,
    queued: usize,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            queue: VecDeque::new(),
            batch: BytesMut::new(),
            queued: 0,
        }
    }

    /// Queues a message as it arrived.
    pub fn push(&mut self, frame: &Frame) {
        self.push_bytes(frame.as_bytes().clone());
    }

    /// Queues already-encoded messages (see [`crate::encode_backend`] and
    /// [`crate::encode_frontend`]).
    pub fn push_bytes(&mut self, bytes: Bytes) {
        self.queued = self.queued.saturating_add(bytes.len());
        if bytes.len() >= COPY_LIMIT {
            if !self.batch.is_empty() {
                self.queue.push_back(self.batch.split().freeze());
            }
            self.queue.push_back(bytes);
        } else {
            if self.batch.capacity() == 0 {
                self.batch.reserve(BATCH);
            }
            self.batch.extend_from_slice(&bytes);
        }
    }

    /// Bytes queued and not yet written.
    pub fn buffered(&self) -> usize {
        self.queued
    }

    /// Writes everything queued and flushes the stream. Cancel-safe (see the type's docs).
    pub async fn flush(&mut self) -> std::io::Result<()> {
        while let Some(front) = self.queue.front_mut() {
            while !front.is_empty() {
                let n = self.inner.write_buf(front).await?;
                written(&mut self.queued, n)?;
            }
            self.queue.pop_front();
        }
        while !self.batch.is_empty() {
            let n = self.inner.write_buf(&mut self.batch).await?;
            written(&mut self.queued, n)?;
        }
        // An idle connection keeps no batch memory; the next message allocates anew.
        self.batch = BytesMut::new();
        self.inner.flush().await
    }

    /// Gives the stream back, for the TLS upgrade after an SSLRequest has been answered.
    /// Messages still queued are dropped, so flush first.
    pub fn into_inner(self) -> W {
        self.inner
    }

    /// Closes the write side (sends TLS close_notify, then FIN).
    pub async fn shutdown(&mut self) -> std::io::Result<()> {
        self.inner.shutdown().await
    }
}

fn written(queued: &mut usize, n: usize) -> std::io::Result<()> {
    if n == 0 {
        return Err(std::io::ErrorKind::WriteZero.into());
    }
    *queued = queued.saturating_sub(n);
    Ok(())
}
