//! Terminal bytes to text for asciicast events, whose data must be JSON strings.
//!
//! A terminal stream is read in chunks that can end in the middle of a UTF-8 sequence; the
//! incomplete tail is carried into the next chunk rather than replaced, so a character
//! split across two reads is recorded whole. Bytes that can never be UTF-8 become U+FFFD,
//! as `String::from_utf8_lossy` does.

/// The longest incomplete sequence that can be carried: a 4-byte sequence missing its last
/// byte.
const MAX_CARRY: usize = 3;

/// One direction of a terminal stream (output or input).
#[derive(Debug, Default)]
pub(crate) struct Utf8Stream {
    carry: Vec<u8>,
}

impl Utf8Stream {
    /// The text of `chunk` after whatever the previous chunk left incomplete. An incomplete
    /// sequence at the end of `chunk` is kept for the next call.
    pub(crate) fn decode(&mut self, chunk: &[u8]) -> String {
        let joined;
        let mut rest: &[u8] = if self.carry.is_empty() {
            chunk
        } else {
            let mut carry = std::mem::take(&mut self.carry);
            carry.extend_from_slice(chunk);
            joined = carry;
            &joined
        };
        let mut text = String::with_capacity(rest.len());
        loop {
            match std::str::from_utf8(rest) {
                Ok(valid) => {
                    text.push_str(valid);
                    return text;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    // `valid_up_to` is exactly the prefix that is valid UTF-8.
                    text.push_str(&String::from_utf8_lossy(valid));
                    match e.error_len() {
                        Some(bad) => {
                            text.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[bad..];
                        }
                        None => {
                            // A sequence cut off by the end of the chunk: at most three
                            // bytes, which the next chunk may complete.
                            debug_assert!(after.len() <= MAX_CARRY);
                            self.carry = after.to_vec();
                            return text;
                        }
                    }
                }
            }
        }
    }

    /// Whatever is still carried, as the replacement character (the stream ended, or the
    /// session did, before the sequence was completed). Empty when nothing is carried.
    pub(crate) fn finish(&mut self) -> String {
        if self.carry.is_empty() {
            String::new()
        } else {
            self.carry.clear();
            char::REPLACEMENT_CHARACTER.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Utf8Stream;

    /// Feeds `chunks` one after the other and checks the text of each, then the finish.
    fn check(chunks: &[&[u8]], expect: &[&str], finish: &str) {
        let mut stream = Utf8Stream::default();
        let got: Vec<String> = chunks.iter().map(|c| stream.decode(c)).collect();
        assert_eq!(got, expect);
        assert_eq!(stream.finish(), finish);
    }

    #[test]
    fn split_sequences_are_carried() {
        let euro = "€".as_bytes(); // e2 82 ac
        let crab = "🦀".as_bytes(); // f0 9f a6 80
        check(&[b"plain"], &["plain"], "");
        check(&[&euro[..1], &euro[1..]], &["", "€"], "");
        check(
            &[&[b'a', euro[0], euro[1]], &[euro[2], b'b']],
            &["a", "€b"],
            "",
        );
        check(
            &[&crab[..1], &crab[1..2], &crab[2..3], &crab[3..]],
            &["", "", "", "🦀"],
            "",
        );
    }

    #[test]
    fn invalid_bytes_are_replaced() {
        check(&[b"a\xffb"], &["a\u{fffd}b"], "");
        // A sequence whose continuation never comes is replaced once the next chunk shows
        // it is broken, or at finish.
        check(&[b"\xe2\x82", b"x"], &["", "\u{fffd}x"], "");
        check(&[b"ok\xe2\x82"], &["ok"], "\u{fffd}");
        check(&[b"\xc0\x80"], &["\u{fffd}\u{fffd}"], "");
    }
}
