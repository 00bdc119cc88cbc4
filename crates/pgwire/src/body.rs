//! A checked cursor over a message body: every read is bounds-checked and returns an error
//! naming the message instead of panicking.

use bytes::{Buf, Bytes};

use crate::WireError;

pub(crate) struct Body {
    buf: Bytes,
    what: &'static str,
}

impl Body {
    pub(crate) fn new(buf: Bytes, what: &'static str) -> Self {
        Self { buf, what }
    }

    fn short(&self) -> WireError {
        WireError::malformed(self.what, "the body ends early")
    }

    pub(crate) fn u8(&mut self) -> Result<u8, WireError> {
        if self.buf.is_empty() {
            return Err(self.short());
        }
        Ok(self.buf.get_u8())
    }

    pub(crate) fn i16(&mut self) -> Result<i16, WireError> {
        if self.buf.len() < 2 {
            return Err(self.short());
        }
        Ok(self.buf.get_i16())
    }

    pub(crate) fn i32(&mut self) -> Result<i32, WireError> {
        if self.buf.len() < 4 {
            return Err(self.short());
        }
        Ok(self.buf.get_i32())
    }

    /// A count that must not be negative (`Int16` counts in Bind, FunctionCall, ...).
    pub(crate) fn count16(&mut self) -> Result<usize, WireError> {
        usize::try_from(self.i16()?)
            .map_err(|_| WireError::malformed(self.what, "a negative count"))
    }

    /// A NUL-terminated string, without its terminator.
    pub(crate) fn cstr(&mut self) -> Result<Bytes, WireError> {
        let Some(end) = self.buf.iter().position(|&b| b == 0) else {
            return Err(WireError::malformed(
                self.what,
                "a string lacks its terminator",
            ));
        };
        let s = self.buf.split_to(end);
        self.buf.advance(1);
        Ok(s)
    }

    /// A NUL-terminated string that must be UTF-8.
    pub(crate) fn utf8(&mut self) -> Result<String, WireError> {
        let raw = self.cstr()?;
        String::from_utf8(raw.to_vec())
            .map_err(|_| WireError::malformed(self.what, "a string is not UTF-8"))
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<Bytes, WireError> {
        if self.buf.len() < n {
            return Err(self.short());
        }
        Ok(self.buf.split_to(n))
    }

    /// An `Int32` length followed by that many bytes, or -1 for NULL.
    pub(crate) fn nullable(&mut self) -> Result<Option<Bytes>, WireError> {
        let len = self.i32()?;
        if len == -1 {
            return Ok(None);
        }
        let n = usize::try_from(len)
            .map_err(|_| WireError::malformed(self.what, "a negative value length"))?;
        self.take(n).map(Some)
    }

    /// A capacity for `n` items of at least `min_size` bytes each that the remaining body
    /// could really hold, so a forged count cannot make us allocate a large vector.
    pub(crate) fn capacity(&self, n: usize, min_size: usize) -> usize {
        n.min(self.buf.len() / min_size.max(1))
    }

    pub(crate) fn rest(self) -> Bytes {
        self.buf
    }

    /// Fails unless the whole body was consumed.
    pub(crate) fn finish(self) -> Result<(), WireError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(WireError::malformed(
                self.what,
                "trailing bytes after the body",
            ))
        }
    }
}
