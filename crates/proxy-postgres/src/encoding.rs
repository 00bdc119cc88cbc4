//! Client encodings as PostgreSQL names them, and reading SQL text the way the server will.
//!
//! The server converts every Query and Parse from the session's `client_encoding` to its own
//! encoding before it parses anything, so the door classifies the same text: it decodes the
//! bytes with the encoding the server will use for that message and parses the result. Two
//! kinds of encodings cannot be followed that way:
//!
//! - *unsafe* ones (SJIS, BIG5, GBK, UHC, GB18030, JOHAB, SHIFT_JIS_2004: PostgreSQL's
//!   client-only encodings), in which a multibyte character may contain the bytes of `\`,
//!   `'` or `"`: a string can end where a reader of another encoding sees it go on. They are
//!   refused wherever a client can ask for them;
//! - encodings without a decoder here (EUC_TW, EUC_JIS_2004, MULE_INTERNAL): their multibyte
//!   characters use only bytes above 0x7F, so pure-ASCII text reads the same in them and is
//!   classified; anything else is refused.
//!
//! Names follow PostgreSQL's own lookup (`pg_char_to_encoding`: ASCII letters and digits
//! only, case-insensitive, over the alias table of `src/common/encnames.c`).

use std::borrow::Cow;

use encoding_rs::Encoding;

/// How the door reads text in one client encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reading {
    Utf8,
    /// SQL_ASCII: the server converts nothing and checks the bytes against its own encoding.
    SqlAscii,
    /// ISO-8859-1 and ISO-8859-9 byte for byte (the WHATWG labels map them to windows-125x,
    /// which differ in 0x80-0x9F).
    Latin1,
    Latin5,
    /// Decoded by `encoding_rs`, whose tables agree with PostgreSQL's for these encodings
    /// wherever PostgreSQL accepts the bytes.
    Decoder(&'static Encoding),
    /// No decoder: ASCII text only.
    AsciiOnly,
    /// Never accepted.
    Unsafe,
}

/// A client encoding, by PostgreSQL's official name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientEncoding {
    pub(crate) name: &'static str,
    pub(crate) reading: Reading,
}

impl ClientEncoding {
    pub(crate) const UTF8: Self = Self {
        name: "UTF8",
        reading: Reading::Utf8,
    };

    /// The encoding PostgreSQL means by `name`, or `None` for a name it does not know.
    pub(crate) fn lookup(name: &str) -> Option<Self> {
        let key: String = name
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        let (_, official) = ALIASES.iter().find(|(alias, _)| *alias == key)?;
        ENCODINGS.iter().find(|e| e.name == *official).copied()
    }

    /// Whether the door can follow a session in this encoding at all.
    pub(crate) fn is_safe(self) -> bool {
        self.reading != Reading::Unsafe
    }

    /// The text the server will parse for `bytes` sent in this encoding, or why the door
    /// cannot read it. `server` is the database's encoding (what SQL_ASCII defers to).
    pub(crate) fn decode(self, bytes: &[u8], server: Self) -> Result<Cow<'_, str>, Unreadable> {
        let invalid = Unreadable::Invalid(self.name);
        match self.reading {
            Reading::Utf8 => std::str::from_utf8(bytes)
                .map(Cow::Borrowed)
                .map_err(|_| invalid),
            // The server checks SQL_ASCII input against its own encoding; a server that is
            // itself SQL_ASCII takes every byte as one character.
            Reading::SqlAscii if server.reading == Reading::SqlAscii => {
                Ok(latin1(bytes, char::from))
            }
            Reading::SqlAscii => server.decode(bytes, server),
            Reading::Latin1 => Ok(latin1(bytes, char::from)),
            Reading::Latin5 => Ok(latin1(bytes, latin5)),
            Reading::Decoder(encoding) => encoding
                .decode_without_bom_handling_and_without_replacement(bytes)
                .ok_or(invalid),
            Reading::AsciiOnly if bytes.is_ascii() => std::str::from_utf8(bytes)
                .map(Cow::Borrowed)
                .map_err(|_| invalid),
            Reading::AsciiOnly => Err(Unreadable::Unsupported(self.name)),
            Reading::Unsafe => Err(Unreadable::Unsafe(self.name)),
        }
    }
}

/// Why SQL text cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unreadable {
    /// Not a valid byte sequence in the session's encoding.
    Invalid(&'static str),
    /// Non-ASCII text in an encoding the door has no decoder for.
    Unsupported(&'static str),
    /// The session is in an unsafe encoding (the door ends such sessions; never expected).
    Unsafe(&'static str),
}

impl Unreadable {
    pub(crate) fn code(self) -> portcullis_pipeline::Code {
        use portcullis_pipeline::Code;
        match self {
            Self::Invalid(_) => Code::InvalidEncoding,
            Self::Unsupported(_) => Code::ClientEncodingUnsupported,
            Self::Unsafe(_) => Code::ClientEncodingForbidden,
        }
    }

    pub(crate) fn message(self) -> String {
        match self {
            Self::Invalid(e) => format!("portcullis: the statement is not valid {e} text"),
            Self::Unsupported(e) => format!(
                "portcullis: the gateway reads only ASCII statements in client_encoding {e}"
            ),
            Self::Unsafe(e) => format!("portcullis: client_encoding {e} is not supported"),
        }
    }
}

/// Text of a single-byte encoding whose bytes below 0x80 are ASCII.
fn latin1(bytes: &[u8], map: impl Fn(u8) -> char) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(ascii) if bytes.is_ascii() => Cow::Borrowed(ascii),
        _ => Cow::Owned(bytes.iter().map(|&b| map(b)).collect()),
    }
}

/// ISO-8859-9: ISO-8859-1 but for six Turkish letters.
fn latin5(b: u8) -> char {
    match b {
        0xD0 => 'Ğ',
        0xDD => 'İ',
        0xDE => 'Ş',
        0xF0 => 'ğ',
        0xFD => 'ı',
        0xFE => 'ş',
        other => char::from(other),
    }
}

/// Every encoding PostgreSQL accepts as a client encoding.
const ENCODINGS: &[ClientEncoding] = &[
    enc("SQL_ASCII", Reading::SqlAscii),
    enc("UTF8", Reading::Utf8),
    enc("LATIN1", Reading::Latin1),
    enc("LATIN2", Reading::Decoder(encoding_rs::ISO_8859_2)),
    enc("LATIN3", Reading::Decoder(encoding_rs::ISO_8859_3)),
    enc("LATIN4", Reading::Decoder(encoding_rs::ISO_8859_4)),
    enc("LATIN5", Reading::Latin5),
    enc("LATIN6", Reading::Decoder(encoding_rs::ISO_8859_10)),
    enc("LATIN7", Reading::Decoder(encoding_rs::ISO_8859_13)),
    enc("LATIN8", Reading::Decoder(encoding_rs::ISO_8859_14)),
    enc("LATIN9", Reading::Decoder(encoding_rs::ISO_8859_15)),
    enc("LATIN10", Reading::Decoder(encoding_rs::ISO_8859_16)),
    enc("ISO_8859_5", Reading::Decoder(encoding_rs::ISO_8859_5)),
    enc("ISO_8859_6", Reading::Decoder(encoding_rs::ISO_8859_6)),
    enc("ISO_8859_7", Reading::Decoder(encoding_rs::ISO_8859_7)),
    enc("ISO_8859_8", Reading::Decoder(encoding_rs::ISO_8859_8)),
    enc("WIN1250", Reading::Decoder(encoding_rs::WINDOWS_1250)),
    enc("WIN1251", Reading::Decoder(encoding_rs::WINDOWS_1251)),
    enc("WIN1252", Reading::Decoder(encoding_rs::WINDOWS_1252)),
    enc("WIN1253", Reading::Decoder(encoding_rs::WINDOWS_1253)),
    enc("WIN1254", Reading::Decoder(encoding_rs::WINDOWS_1254)),
    enc("WIN1255", Reading::Decoder(encoding_rs::WINDOWS_1255)),
    enc("WIN1256", Reading::Decoder(encoding_rs::WINDOWS_1256)),
    enc("WIN1257", Reading::Decoder(encoding_rs::WINDOWS_1257)),
    enc("WIN1258", Reading::Decoder(encoding_rs::WINDOWS_1258)),
    enc("WIN866", Reading::Decoder(encoding_rs::IBM866)),
    enc("WIN874", Reading::Decoder(encoding_rs::WINDOWS_874)),
    enc("KOI8R", Reading::Decoder(encoding_rs::KOI8_R)),
    enc("KOI8U", Reading::Decoder(encoding_rs::KOI8_U)),
    enc("EUC_JP", Reading::Decoder(encoding_rs::EUC_JP)),
    enc("EUC_KR", Reading::Decoder(encoding_rs::EUC_KR)),
    // GBK is a superset of EUC-CN (GB 2312) and agrees with it on every EUC-CN character.
    enc("EUC_CN", Reading::Decoder(encoding_rs::GBK)),
    enc("EUC_TW", Reading::AsciiOnly),
    enc("EUC_JIS_2004", Reading::AsciiOnly),
    enc("MULE_INTERNAL", Reading::AsciiOnly),
    enc("SJIS", Reading::Unsafe),
    enc("SHIFT_JIS_2004", Reading::Unsafe),
    enc("BIG5", Reading::Unsafe),
    enc("GBK", Reading::Unsafe),
    enc("UHC", Reading::Unsafe),
    enc("GB18030", Reading::Unsafe),
    enc("JOHAB", Reading::Unsafe),
];

const fn enc(name: &'static str, reading: Reading) -> ClientEncoding {
    ClientEncoding { name, reading }
}

/// PostgreSQL's alias table (`pg_encname_tbl`), cleaned names to official names.
const ALIASES: &[(&str, &str)] = &[
    ("abc", "WIN1258"),
    ("alt", "WIN866"),
    ("big5", "BIG5"),
    ("euccn", "EUC_CN"),
    ("eucjis2004", "EUC_JIS_2004"),
    ("eucjp", "EUC_JP"),
    ("euckr", "EUC_KR"),
    ("euctw", "EUC_TW"),
    ("gb18030", "GB18030"),
    ("gbk", "GBK"),
    ("iso88591", "LATIN1"),
    ("iso885910", "LATIN6"),
    ("iso885913", "LATIN7"),
    ("iso885914", "LATIN8"),
    ("iso885915", "LATIN9"),
    ("iso885916", "LATIN10"),
    ("iso88592", "LATIN2"),
    ("iso88593", "LATIN3"),
    ("iso88594", "LATIN4"),
    ("iso88595", "ISO_8859_5"),
    ("iso88596", "ISO_8859_6"),
    ("iso88597", "ISO_8859_7"),
    ("iso88598", "ISO_8859_8"),
    ("iso88599", "LATIN5"),
    ("johab", "JOHAB"),
    ("koi8", "KOI8R"),
    ("koi8r", "KOI8R"),
    ("koi8u", "KOI8U"),
    ("latin1", "LATIN1"),
    ("latin10", "LATIN10"),
    ("latin2", "LATIN2"),
    ("latin3", "LATIN3"),
    ("latin4", "LATIN4"),
    ("latin5", "LATIN5"),
    ("latin6", "LATIN6"),
    ("latin7", "LATIN7"),
    ("latin8", "LATIN8"),
    ("latin9", "LATIN9"),
    ("mskanji", "SJIS"),
    ("muleinternal", "MULE_INTERNAL"),
    ("shiftjis", "SJIS"),
    ("shiftjis2004", "SHIFT_JIS_2004"),
    ("sjis", "SJIS"),
    ("sqlascii", "SQL_ASCII"),
    ("tcvn", "WIN1258"),
    ("tcvn5712", "WIN1258"),
    ("uhc", "UHC"),
    ("unicode", "UTF8"),
    ("utf8", "UTF8"),
    ("vscii", "WIN1258"),
    ("win", "WIN1251"),
    ("win1250", "WIN1250"),
    ("win1251", "WIN1251"),
    ("win1252", "WIN1252"),
    ("win1253", "WIN1253"),
    ("win1254", "WIN1254"),
    ("win1255", "WIN1255"),
    ("win1256", "WIN1256"),
    ("win1257", "WIN1257"),
    ("win1258", "WIN1258"),
    ("win866", "WIN866"),
    ("win874", "WIN874"),
    ("win932", "SJIS"),
    ("win936", "GBK"),
    ("win949", "UHC"),
    ("win950", "BIG5"),
    ("windows1250", "WIN1250"),
    ("windows1251", "WIN1251"),
    ("windows1252", "WIN1252"),
    ("windows1253", "WIN1253"),
    ("windows1254", "WIN1254"),
    ("windows1255", "WIN1255"),
    ("windows1256", "WIN1256"),
    ("windows1257", "WIN1257"),
    ("windows1258", "WIN1258"),
    ("windows866", "WIN866"),
    ("windows874", "WIN874"),
    ("windows932", "SJIS"),
    ("windows936", "GBK"),
    ("windows949", "UHC"),
    ("windows950", "BIG5"),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str) -> ClientEncoding {
        ClientEncoding::lookup(name).unwrap()
    }

    #[test]
    fn names_are_looked_up_like_postgresql_does() {
        assert_eq!(named("utf-8"), ClientEncoding::UTF8);
        assert_eq!(named("UNICODE"), ClientEncoding::UTF8);
        assert_eq!(named("Shift_JIS").name, "SJIS");
        assert_eq!(named("s-j-i-s").name, "SJIS");
        assert_eq!(named("windows-936").name, "GBK");
        assert_eq!(named("ISO-8859-9").name, "LATIN5");
        assert_eq!(ClientEncoding::lookup("klingon"), None);
        assert_eq!(ClientEncoding::lookup(""), None);
        // Every alias leads to a listed encoding.
        for (alias, _) in ALIASES {
            assert!(ClientEncoding::lookup(alias).is_some(), "{alias}");
        }
    }

    #[test]
    fn every_client_only_multibyte_encoding_is_unsafe() {
        for name in [
            "SJIS",
            "mskanji",
            "win932",
            "shift_jis_2004",
            "BIG5",
            "win950",
            "GBK",
            "windows936",
            "UHC",
            "win949",
            "GB18030",
            "JOHAB",
        ] {
            assert!(!named(name).is_safe(), "{name}");
        }
        for name in [
            "UTF8",
            "LATIN1",
            "EUC_JP",
            "EUC_KR",
            "KOI8R",
            "WIN1252",
            "SQL_ASCII",
        ] {
            assert!(named(name).is_safe(), "{name}");
        }
    }

    #[test]
    fn text_is_read_as_the_server_will() {
        let utf8 = ClientEncoding::UTF8;
        assert_eq!(named("LATIN1").decode(b"caf\xe9", utf8).unwrap(), "café");
        assert_eq!(named("LATIN5").decode(b"\xdeu", utf8).unwrap(), "Şu");
        assert_eq!(named("LATIN1").decode(b"\x85", utf8).unwrap(), "\u{85}");
        assert_eq!(
            named("EUC_JP").decode(b"\xa4\xa2", utf8).unwrap(),
            "\u{3042}"
        );
        assert_eq!(named("SQL_ASCII").decode(b"abc", utf8).unwrap(), "abc");
        assert!(utf8.decode(b"\xc3", utf8).is_err());
        assert!(named("SQL_ASCII").decode(b"\xff", utf8).is_err());
        assert_eq!(
            named("EUC_TW").decode(b"SELECT 1", utf8).unwrap(),
            "SELECT 1"
        );
        assert_eq!(
            named("EUC_TW").decode(b"SELECT '\xa4\xa1'", utf8),
            Err(Unreadable::Unsupported("EUC_TW"))
        );
        assert_eq!(
            named("SJIS").decode(b"SELECT 1", utf8),
            Err(Unreadable::Unsafe("SJIS"))
        );
    }
}
