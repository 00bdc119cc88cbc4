//! Makers of single values: valid sensitive values of every entity, the harmless values that
//! surround them, and the hard negatives. Each is a `fn(&mut Rng) -> String` so the writer
//! can label what it appends.
//!
//! Vendor key prefixes are written split (`concat!`) so that secret scanners run over this
//! repository do not flag the generator itself.

use std::net::Ipv6Addr;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use super::Rng;

const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &[u8] = b"0123456789";
const HEX: &[u8] = b"0123456789abcdef";
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const UPPER_ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const BASE64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/// Password characters: none that ends a bare value in any recognizer (whitespace, quotes,
/// `, ; & < > / ? # @ :`), none that makes a value a placeholder when first (`$ { < % [ (`).
const PASSWORD: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-._~^";

pub const FIRST: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "oscar", "peggy", "trent", "victor", "walter", "jose", "zoe", "wei", "omar", "chloe", "soren",
];
pub const LAST: &[&str] = &[
    "smith", "jones", "mueller", "garcia", "rossi", "dubois", "tanaka", "kowalski", "nguyen",
    "okafor", "silva", "novak", "martin", "larsen",
];
/// Display names, some with non-ASCII letters as real customer tables have.
pub const NAMES: &[&str] = &[
    "Alice Smith",
    "José Müller",
    "Zoë Dubois",
    "Łukasz Kowalski",
    "Søren Ørsted",
    "Ana Silva",
    "Wei Zhang",
    "Chloé Martin",
    "Omar Okafor",
    "Grace Tanaka",
    "Heidi Larsen",
    "Ivan Novak",
    "Frank O'Neill",
    "Renée García",
];
pub const CITIES: &[&str] = &[
    "Berlin", "München", "Lyon", "London", "Kraków", "Porto", "Zürich", "Oslo", "Austin",
    "Toronto", "Milano", "Gdańsk",
];
pub const WORDS: &[&str] = &[
    "order",
    "shipped",
    "customer",
    "account",
    "status",
    "active",
    "pending",
    "invoice",
    "total",
    "warehouse",
    "report",
    "quarterly",
    "revenue",
    "widget",
    "delivery",
    "refund",
    "support",
    "ticket",
    "escalated",
    "resolved",
    "priority",
    "backlog",
    "migration",
    "rollout",
    "latency",
    "queue",
    "cache",
    "replica",
    "schema",
    "export",
    "Grüße",
    "naïve",
    "café",
];
const DOMAINS: &[&str] = &[
    "example.com",
    "example.org",
    "mail.example.net",
    "corp.example.co.uk",
    "acme-widgets.io",
    "shop.example.de",
];

// ---- payment data ----

/// A Luhn-valid card number of a known issuer and length, bare or grouped.
pub fn card(rng: &mut Rng) -> String {
    let (digits, amex) = card_digits(rng, true);
    group_card(rng, &digits, amex)
}

/// A card-shaped number with an issuer prefix that fails Luhn.
pub fn bad_card(rng: &mut Rng) -> String {
    let (digits, amex) = card_digits(rng, false);
    group_card(rng, &digits, amex)
}

fn card_digits(rng: &mut Rng, valid: bool) -> (String, bool) {
    let (prefix, len) = match rng.below(6) {
        0 | 1 => ("4".to_owned(), 16),
        2 => (format!("5{}", rng.range(1, 5)), 16),
        3 => (rng.range(2221, 2720).to_string(), 16),
        4 => (rng.pick(&["34", "37"]).to_owned(), 15),
        _ => (rng.pick(&["6011", "65"]).to_owned(), 16),
    };
    let mut d = prefix.clone();
    d.push_str(&rng.chars(DIGITS, len - 1 - prefix.len()));
    let check = luhn_digit(&d);
    let check = if valid {
        check
    } else {
        (check + 1 + rng.below(9) as u32) % 10
    };
    d.push(char::from(b'0' + check as u8));
    (d, len == 15)
}

/// The digit that makes `payload` + digit pass Luhn.
fn luhn_digit(payload: &str) -> u32 {
    // The check digit will be rightmost, so the payload's last digit is the first doubled.
    let sum: u32 = payload
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let v = u32::from(b - b'0');
            if i % 2 == 0 {
                let twice = v * 2;
                if twice > 9 { twice - 9 } else { twice }
            } else {
                v
            }
        })
        .sum();
    (10 - sum % 10) % 10
}

fn group_card(rng: &mut Rng, digits: &str, amex: bool) -> String {
    if rng.chance(40) {
        return digits.to_owned();
    }
    let sep = if rng.chance(70) { " " } else { "-" };
    let cuts: &[usize] = if amex { &[4, 10] } else { &[4, 8, 12] };
    let mut out = String::with_capacity(digits.len() + 3);
    for (i, c) in digits.chars().enumerate() {
        if cuts.contains(&i) {
            out.push_str(sep);
        }
        out.push(c);
    }
    out
}

/// Countries with their BBAN layout: `n` digits, `a` upper-case letters, `c` either.
const IBANS: &[(&str, &[(u8, usize)])] = &[
    ("DE", &[(b'n', 18)]),
    ("GB", &[(b'a', 4), (b'n', 14)]),
    ("FR", &[(b'n', 10), (b'c', 11), (b'n', 2)]),
    ("NL", &[(b'a', 4), (b'n', 10)]),
    ("ES", &[(b'n', 20)]),
    ("IT", &[(b'a', 1), (b'n', 10), (b'c', 12)]),
    ("BE", &[(b'n', 12)]),
    ("CH", &[(b'n', 5), (b'c', 12)]),
    ("AT", &[(b'n', 16)]),
    ("PL", &[(b'n', 24)]),
    ("NO", &[(b'n', 11)]),
    ("IE", &[(b'a', 4), (b'n', 14)]),
];

/// A mod-97-valid IBAN, bare or in groups of four.
pub fn iban(rng: &mut Rng) -> String {
    let bare = iban_bare(rng);
    if rng.chance(50) { bare } else { group4(&bare) }
}

/// A bare IBAN with one BBAN digit changed: a single changed digit always breaks mod 97.
pub fn bad_iban(rng: &mut Rng) -> String {
    let mut bytes = iban_bare(rng).into_bytes();
    let digits: Vec<usize> = (4..bytes.len())
        .filter(|&i| bytes[i].is_ascii_digit())
        .collect();
    let i = digits[rng.below(digits.len())];
    bytes[i] = b'0' + (bytes[i] - b'0' + 1 + rng.below(9) as u8) % 10;
    String::from_utf8(bytes).unwrap_or_default()
}

fn iban_bare(rng: &mut Rng) -> String {
    let &(country, layout) = &IBANS[rng.below(IBANS.len())];
    let mut bban = String::new();
    for &(kind, n) in layout {
        let alphabet = match kind {
            b'n' => DIGITS,
            b'a' => UPPER,
            _ => UPPER_ALNUM,
        };
        bban.push_str(&rng.chars(alphabet, n));
    }
    let check = 98 - mod97(&format!("{bban}{country}00"));
    format!("{country}{check:02}{bban}")
}

fn mod97(s: &str) -> u32 {
    s.bytes().fold(0, |rem, c| match c {
        b'0'..=b'9' => (rem * 10 + u32::from(c - b'0')) % 97,
        _ => (rem * 100 + u32::from(c - b'A') + 10) % 97,
    })
}

fn group4(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

// ---- government ids ----

/// A US SSN with a valid area (not 000, 666, 9xx), group and serial, dashed or spaced.
pub fn ssn(rng: &mut Rng) -> String {
    let area = loop {
        let a = rng.range(1, 899);
        if a != 666 {
            break a;
        }
    };
    let (group, serial) = (rng.range(1, 99), rng.range(1, 9999));
    let sep = if rng.chance(85) { '-' } else { ' ' };
    format!("{area:03}{sep}{group:02}{sep}{serial:04}")
}

/// Nine bare SSN digits, for `ssn: …` contexts.
pub fn ssn_bare(rng: &mut Rng) -> String {
    ssn(rng).replace(['-', ' '], "")
}

/// A UK NINO: allowed prefix letters, six digits, suffix A–D, bare or spaced.
pub fn nino(rng: &mut Rng) -> String {
    const FIRST: &[u8] = b"ABCEGHJKLMNOPRSTWXYZ";
    const SECOND: &[u8] = b"ABCEGHJKLMNPRSTWXYZ";
    let prefix = loop {
        let p = format!("{}{}", rng.chars(FIRST, 1), rng.chars(SECOND, 1));
        if !["BG", "GB", "KN", "NK", "NT", "TN", "ZZ"].contains(&p.as_str()) {
            break p;
        }
    };
    let d = rng.chars(DIGITS, 6);
    let suffix = rng.chars(b"ABCD", 1);
    if rng.chance(30) {
        format!("{prefix} {} {} {} {suffix}", &d[..2], &d[2..4], &d[4..])
    } else {
        format!("{prefix}{d}{suffix}")
    }
}

/// A US passport number: nine digits or a letter and eight digits.
pub fn passport(rng: &mut Rng) -> String {
    if rng.chance(50) {
        format!("{}{}", rng.chars(UPPER, 1), rng.chars(DIGITS, 8))
    } else {
        format!("{}{}", rng.range(1, 9), rng.chars(DIGITS, 8))
    }
}

// ---- contact data ----

pub fn email(rng: &mut Rng) -> String {
    let (f, l) = (rng.pick(FIRST), rng.pick(LAST));
    let d = rng.pick(DOMAINS);
    match rng.below(4) {
        0 => format!("{f}.{l}@{d}"),
        1 => format!("{f}{}@{d}", rng.range(1, 999)),
        2 => format!("{f}_{l}+{}@{d}", rng.pick(&["billing", "news", "test"])),
        _ => format!("{}{l}@{d}", &f[..1]),
    }
}

/// A telephone number: international (`+CC`, 8–15 digits), North American, or national with
/// a trunk 0.
pub fn phone(rng: &mut Rng) -> String {
    let area = rng.range(200, 989);
    let exchange = rng.range(200, 999);
    let line = rng.range(0, 9999);
    match rng.below(10) {
        0 => format!("+1 {area} {exchange} {line:04}"),
        1 => format!("+44 20 {} {:04}", rng.range(3000, 8999), line),
        2 => format!("+49 30 {}", rng.range(1_000_000, 99_999_999)),
        3 => format!(
            "+33 {} {:02} {:02} {:02} {:02}",
            rng.range(1, 9),
            rng.range(0, 99),
            rng.range(0, 99),
            rng.range(0, 99),
            rng.range(0, 99)
        ),
        4 => format!("+1{area}{exchange}{line:04}"),
        5 => format!("({area}) {exchange}-{line:04}"),
        6 => format!("{area}-{exchange}-{line:04}"),
        7 => format!("{area}.{exchange}.{line:04}"),
        8 => format!("020 {} {:04}", rng.range(3000, 8999), line),
        _ => format!(
            "0{} {:02} {:02} {:02} {:02}",
            rng.range(1, 9),
            rng.range(0, 99),
            rng.range(0, 99),
            rng.range(0, 99),
            rng.range(0, 99)
        ),
    }
}

// ---- network ----

pub fn ipv4(rng: &mut Rng) -> String {
    let (c, d) = (rng.range(0, 255), rng.range(1, 254));
    match rng.below(4) {
        0 => format!("10.{}.{c}.{d}", rng.range(0, 255)),
        1 => format!("192.168.{c}.{d}"),
        2 => format!("172.{}.{c}.{d}", rng.range(16, 31)),
        _ => format!("{}.{}.{c}.{d}", rng.range(11, 223), rng.range(0, 255)),
    }
}

pub fn ipv6(rng: &mut Rng) -> String {
    loop {
        let g = |rng: &mut Rng| format!("{:x}", rng.range(0, 0xffff));
        let s = match rng.below(3) {
            0 => (0..8).map(|_| g(rng)).collect::<Vec<_>>().join(":"),
            1 => format!("2001:db8:{}:{}::{}", g(rng), g(rng), g(rng)),
            _ => format!("fe80::{}:{}:{}:{}", g(rng), g(rng), g(rng), g(rng)),
        };
        let groups: Vec<&str> = s.split(':').collect();
        let eui64 = groups.len() == 8 && groups.iter().all(|g| g.len() == 2);
        let hex = s.bytes().filter(u8::is_ascii_hexdigit).count();
        if !eui64 && hex >= 4 && s.parse::<Ipv6Addr>().is_ok() {
            return s;
        }
    }
}

/// A MAC address in colon, dash or Cisco dotted form, with a decimal digit (and a letter in
/// the dotted form), as the recognizer requires of real addresses.
pub fn mac(rng: &mut Rng) -> String {
    loop {
        let hex = rng.chars(HEX, 12);
        let s = match rng.below(3) {
            0 => pairs(&hex).join(":"),
            1 => pairs(&hex).join("-").to_ascii_uppercase(),
            _ => format!("{}.{}.{}", &hex[..4], &hex[4..8], &hex[8..]),
        };
        let digit = s.bytes().any(|b| b.is_ascii_digit());
        let letter = s.bytes().any(|b| b.is_ascii_alphabetic());
        if digit && (letter || !s.contains('.')) {
            return s;
        }
    }
}

fn pairs(hex: &str) -> Vec<&str> {
    (0..hex.len() / 2).map(|i| &hex[2 * i..2 * i + 2]).collect()
}

// ---- keys and tokens ----

pub fn jwt(rng: &mut Rng) -> String {
    let header = if rng.chance(70) {
        r#"{"alg":"HS256","typ":"JWT"}"#.to_owned()
    } else {
        format!(
            r#"{{"alg":"RS256","kid":"k{}","typ":"JWT"}}"#,
            rng.range(1, 9)
        )
    };
    let iat = rng.range(1_700_000_000, 1_760_000_000);
    let payload = format!(
        r#"{{"sub":"user-{}","name":"{}","scope":"read write","iat":{iat},"exp":{}}}"#,
        rng.range(1, 99_999),
        rng.pick(NAMES),
        iat + 3600
    );
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload),
        rng.chars(BASE64URL, 43)
    )
}

pub fn aws_key_id(rng: &mut Rng) -> String {
    format!(
        "{}{}",
        rng.pick(&[concat!("AK", "IA"), concat!("AS", "IA")]),
        rng.chars(BASE32, 16)
    )
}

pub fn aws_secret(rng: &mut Rng) -> String {
    loop {
        let s = rng.chars(BASE64, 40);
        if entropy(&s) >= 3.8 {
            return s;
        }
    }
}

pub fn github(rng: &mut Rng) -> String {
    if rng.chance(80) {
        let kind = rng.pick(&["p", "o", "u", "s", "r"]);
        format!("{}{kind}_{}", concat!("g", "h"), rng.chars(ALNUM, 36))
    } else {
        format!(
            "{}_{}_{}",
            concat!("github", "_pat"),
            rng.chars(ALNUM, 22),
            rng.chars(ALNUM, 59)
        )
    }
}

pub fn slack(rng: &mut Rng) -> String {
    format!(
        "{}-{}-{}-{}",
        rng.pick(&[concat!("xo", "xb"), concat!("xo", "xp")]),
        rng.range(10_000_000_000, 99_999_999_999),
        rng.range(1_000_000_000_000, 9_999_999_999_999),
        rng.chars(ALNUM, 24)
    )
}

/// The path after `hooks.slack.com/services/` (the part the engine masks).
pub fn slack_webhook_path(rng: &mut Rng) -> String {
    format!(
        "T{}/B{}/{}",
        rng.chars(UPPER_ALNUM, 8),
        rng.chars(UPPER_ALNUM, 8),
        rng.chars(ALNUM, 24)
    )
}

pub fn stripe(rng: &mut Rng) -> String {
    let prefix = rng.pick(&[
        concat!("sk", "_live_"),
        concat!("sk", "_test_"),
        concat!("rk", "_live_"),
        concat!("wh", "sec_"),
    ]);
    format!("{prefix}{}", with_digit(rng, ALNUM, 24))
}

pub fn openai(rng: &mut Rng) -> String {
    let prefix = rng.pick(&[concat!("sk", "-proj-"), concat!("sk", "-")]);
    format!("{prefix}{}", mixed(rng, 48))
}

pub fn google(rng: &mut Rng) -> String {
    format!("{}{}", concat!("AI", "za"), rng.chars(BASE64URL, 35))
}

/// A PEM private key block, from its BEGIN line to the end of its END line.
pub fn pem(rng: &mut Rng) -> String {
    let kind = rng.pick(&["", "RSA ", "EC ", "OPENSSH "]);
    let armour = concat!("PRIVATE", " KEY");
    let mut s = format!("-----BEGIN {kind}{armour}-----\n");
    for _ in 0..rng.range(6, 20) {
        s.push_str(&rng.chars(BASE64, 64));
        s.push('\n');
    }
    let tail = rng.range(8, 60) as usize;
    s.push_str(&rng.chars(BASE64, tail));
    s.push_str("==\n");
    s.push_str(&format!("-----END {kind}{armour}-----"));
    s
}

/// The same key with its newlines escaped, as service-account JSON files carry it.
pub fn pem_json(rng: &mut Rng) -> String {
    pem(rng).replace('\n', "\\n")
}

// ---- context-dependent secrets ----

/// A password: any value of three or more characters is one after a password-like key.
pub fn password(rng: &mut Rng) -> String {
    match rng.below(3) {
        0 => format!(
            "{}{}{}",
            capitalise(rng.pick(WORDS)),
            rng.range(10, 2099),
            rng.pick(&["!", "*", "", "."])
        ),
        1 => {
            let n = rng.range(10, 20) as usize;
            rng.chars(PASSWORD, n)
        }
        _ => format!(
            "{}-{}-{}",
            rng.pick(LAST),
            rng.pick(FIRST),
            rng.chars(ALNUM, 4)
        ),
    }
}

/// A random token that passes the generic-secret test for keys that are not password-like:
/// two character classes and entropy near that of random text.
pub fn token(rng: &mut Rng) -> String {
    loop {
        let n = rng.range(24, 40) as usize;
        let s = rng.chars(ALNUM, n);
        if entropy(&s) >= 3.8 && s.bytes().any(|b| b.is_ascii_digit()) {
            return s;
        }
    }
}

// ---- harmless values and hard negatives ----

pub fn uuid(rng: &mut Rng) -> String {
    let h = rng.chars(HEX, 32);
    format!(
        "{}-{}-4{}-{}{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        rng.pick(&["8", "9", "a", "b"]),
        &h[17..20],
        &h[20..]
    )
}

/// A hex request or span id with at least one letter, so it is never a plain digit run.
pub fn hex_id(rng: &mut Rng) -> String {
    loop {
        let s = rng.chars(HEX, 16);
        if s.bytes().any(|b| b.is_ascii_alphabetic()) {
            return s;
        }
    }
}

pub fn sha1(rng: &mut Rng) -> String {
    rng.chars(HEX, 40)
}

pub fn sha256(rng: &mut Rng) -> String {
    rng.chars(HEX, 64)
}

pub fn version(rng: &mut Rng) -> String {
    let (a, b, c) = (rng.range(0, 9), rng.range(0, 30), rng.range(0, 20));
    match rng.below(4) {
        0 => format!("v{a}.{b}.{c}"),
        1 => format!("{a}.{b}.{c}"),
        2 => format!("v{a}.{b}.{c}.{}", rng.range(0, 99)),
        _ => format!("{a}.{b}.{c}-rc.{}", rng.range(1, 5)),
    }
}

pub fn date(rng: &mut Rng) -> String {
    let (y, m, d) = (rng.range(2019, 2025), rng.range(1, 12), rng.range(1, 28));
    match rng.below(4) {
        0 | 1 => format!("{y}-{m:02}-{d:02}"),
        2 => format!("{d:02}/{m:02}/{y}"),
        _ => format!("{d:02}.{m:02}.{y}"),
    }
}

pub fn timestamp(rng: &mut Rng) -> String {
    let (y, mo, d) = (rng.range(2023, 2025), rng.range(1, 12), rng.range(1, 28));
    let (h, mi, s, ms) = (
        rng.range(0, 23),
        rng.range(0, 59),
        rng.range(0, 59),
        rng.range(0, 999),
    );
    match rng.below(3) {
        0 => format!("{y}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z"),
        1 => format!("{y}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02},{ms:03}"),
        _ => format!("{y}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}+01:00"),
    }
}

pub fn order_number(rng: &mut Rng) -> String {
    format!(
        "{}-{}-{:06}",
        rng.pick(&["ORD", "INV", "PO"]),
        rng.range(2019, 2025),
        rng.range(1, 999_999)
    )
}

/// Unix time in seconds or milliseconds (13 digits starting with 1: no card issuer).
pub fn epoch(rng: &mut Rng) -> String {
    let s = rng.range(1_600_000_000, 1_760_000_000);
    if rng.chance(50) {
        s.to_string()
    } else {
        format!("{s}{:03}", rng.range(0, 999))
    }
}

pub fn amount(rng: &mut Rng) -> String {
    let (units, cents) = (rng.range(1, 99_999), rng.range(0, 99));
    match rng.below(4) {
        0 => format!("{units}.{cents:02}"),
        1 => format!("${},{:03}.{cents:02}", units / 1000 + 1, units % 1000),
        2 => format!("{units}.{cents:02} EUR"),
        _ => format!("€{units},{cents:02}"),
    }
}

/// A value that stands for a secret rather than being one (`is_placeholder` in the engine).
pub fn placeholder(rng: &mut Rng) -> String {
    rng.pick(&[
        "${DB_PASS}",
        "$DB_PASS",
        "<password>",
        "********",
        "{{ vault_db_password }}",
        "[REDACTED]",
        "%(db_password)s",
    ])
    .to_owned()
}

/// A JSON null or masked value for a secret-looking key.
pub fn json_placeholder(rng: &mut Rng) -> String {
    rng.pick(&["null", "\"****\"", "\"<password>\"", "\"${API_KEY}\""])
        .to_owned()
}

pub fn word(rng: &mut Rng) -> String {
    rng.pick(WORDS).to_owned()
}

pub fn name(rng: &mut Rng) -> String {
    rng.pick(NAMES).to_owned()
}

pub fn user(rng: &mut Rng) -> String {
    format!("{}.{}", rng.pick(FIRST), rng.pick(LAST))
}

pub fn host(rng: &mut Rng) -> String {
    format!(
        "{}-{:02}.internal",
        rng.pick(&["db", "cache", "api", "web", "queue", "search"]),
        rng.range(1, 40)
    )
}

fn capitalise(w: &str) -> String {
    let mut c = w.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// `n` characters from `alphabet` with at least one digit.
fn with_digit(rng: &mut Rng, alphabet: &[u8], n: usize) -> String {
    loop {
        let s = rng.chars(alphabet, n);
        if s.bytes().any(|b| b.is_ascii_digit()) {
            return s;
        }
    }
}

/// `n` alphanumerics mixing upper case, lower case and digits.
fn mixed(rng: &mut Rng, n: usize) -> String {
    loop {
        let s = rng.chars(ALNUM, n);
        let b = s.as_bytes();
        if b.iter().any(u8::is_ascii_uppercase)
            && b.iter().any(u8::is_ascii_lowercase)
            && b.iter().any(u8::is_ascii_digit)
        {
            return s;
        }
    }
}

/// Shannon entropy in bits per byte.
fn entropy(s: &str) -> f64 {
    let mut freq = [0u32; 256];
    for &b in s.as_bytes() {
        freq[usize::from(b)] += 1;
    }
    let len = s.len() as f64;
    freq.iter()
        .filter(|&&n| n > 0)
        .map(|&n| {
            let p = f64::from(n) / len;
            -p * p.log2()
        })
        .sum()
}

/// Standard base64 of `user:password`, for `Authorization: Basic`.
pub fn basic_credentials(rng: &mut Rng) -> String {
    let creds = format!("{}:{}", rng.pick(FIRST), password(rng));
    STANDARD.encode(creds)
}
