//! Lossy UTF-8 decoding of a byte stream that arrives in chunks, with the same output as
//! [`String::from_utf8_lossy`] on the whole stream: each maximal invalid sequence becomes one
//! U+FFFD, and a sequence cut by a chunk boundary waits (at most three bytes) for the rest.

/// The bytes of an incomplete character at the end of the last chunk.
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    tail: Vec<u8>,
}

impl Decoder {
    /// Appends the text of `chunk` to `out`.
    pub(crate) fn decode(&mut self, chunk: &[u8], out: &mut String) {
        if self.tail.is_empty() {
            self.decode_from(chunk, out);
        } else {
            let mut joined = std::mem::take(&mut self.tail);
            joined.extend_from_slice(chunk);
            self.decode_from(&joined, out);
        }
    }

    /// Appends what is left at the end of the stream (U+FFFD for an incomplete character).
    pub(crate) fn finish(&mut self, out: &mut String) {
        if !self.tail.is_empty() {
            self.tail.clear();
            out.push(char::REPLACEMENT_CHARACTER);
        }
    }

    /// How many bytes wait for the rest of their character.
    pub(crate) fn pending(&self) -> usize {
        self.tail.len()
    }

    fn decode_from(&mut self, mut rest: &[u8], out: &mut String) {
        loop {
            match std::str::from_utf8(rest) {
                Ok(text) => {
                    out.push_str(text);
                    return;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    // `valid_up_to` promises this prefix is UTF-8.
                    out.push_str(&String::from_utf8_lossy(valid));
                    match e.error_len() {
                        Some(len) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[len..];
                        }
                        None => {
                            self.tail.extend_from_slice(after);
                            return;
                        }
                    }
                }
            }
        }
    }
}
