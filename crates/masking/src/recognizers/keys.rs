//! Keys and tokens of known formats: PEM private keys, JWTs, AWS, GitHub, Slack, Stripe,
//! OpenAI and Google API keys. Their prefixes make them precise; validators add the checks
//! the format allows (JWT header, AWS secret context and entropy, character mix).

use std::ops::Range;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use super::checks::{after, char_classes, entropy, is_word};
use super::{Locate, NEAR, Recognizer, wb};
use crate::Entity;

/// The armour line that opens a PEM private key.
macro_rules! pem_begin {
    () => {
        r"-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----"
    };
}

/// The armour line that closes it.
macro_rules! pem_end {
    () => {
        r"-----END (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----"
    };
}

/// A PEM private key: a lazy body up to the first END line, or to the end of a truncated text.
pub(crate) const PEM: &str = concat!(pem_begin!(), r"(?s:.)*?(?:", pem_end!(), r"|\z)");

/// The PEM header and END line on their own: a [`PEM`] match can run to the end of the text,
/// so the streaming masker tracks blocks with these instead (`stream/pem.rs`).
pub(crate) const PEM_BEGIN: &str = pem_begin!();
pub(crate) const PEM_END: &str = pem_end!();

pub(super) const RECOGNIZERS: &[Recognizer] = &[
    Recognizer {
        entity: Entity::PrivateKey,
        pattern: PEM,
        check: |_, r| Some(r),
        reach: NEAR,
        locate: Locate::Prefix(&["-----BEGIN "]),
    },
    Recognizer {
        entity: Entity::Jwt,
        pattern: concat!(
            wb!(),
            r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{2,}(?:\.[A-Za-z0-9_-]*){1,3}"
        ),
        check: jwt,
        reach: NEAR,
        locate: Locate::Prefix(&["eyJ"]),
    },
    Recognizer {
        entity: Entity::AwsAccessKeyId,
        pattern: concat!(
            wb!(),
            r"(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z2-7]{16}",
            wb!()
        ),
        check: |_, r| Some(r),
        reach: NEAR,
        locate: Locate::Prefix(&["AKIA", "ASIA", "ABIA", "ACCA", "A3T"]),
    },
    Recognizer {
        entity: Entity::AwsSecretAccessKey,
        pattern: r#"(?i:aws_?secret_?access_?key|aws_?secret_?key|secret_?access_?key)["']?[ \t]*(?:=>|=|:)[ \t]*["']?[A-Za-z0-9/+]{40}"#,
        check: aws_secret,
        reach: NEAR,
        locate: Locate::Prefix(&["aws", "secret"]),
    },
    Recognizer {
        entity: Entity::GithubToken,
        pattern: concat!(
            wb!(),
            r"(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{30,})",
            wb!()
        ),
        check: |_, r| (r.len() <= 255).then_some(r),
        reach: NEAR,
        locate: Locate::Prefix(&["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"]),
    },
    Recognizer {
        entity: Entity::SlackToken,
        pattern: concat!(wb!(), r"(?:xox[abposre]|xapp)-[A-Za-z0-9-]{10,}"),
        check: slack_token,
        reach: NEAR,
        locate: Locate::Prefix(&["xox", "xapp-"]),
    },
    Recognizer {
        entity: Entity::SlackToken,
        pattern: r"hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/-]{16,}",
        check: slack_webhook,
        reach: NEAR,
        locate: Locate::Prefix(&["hooks.slack.com/"]),
    },
    Recognizer {
        entity: Entity::StripeKey,
        pattern: concat!(
            wb!(),
            r"(?:(?:sk|rk)_(?:live|test)|pk_live|whsec)_[A-Za-z0-9]{10,}",
            wb!()
        ),
        check: stripe,
        reach: NEAR,
        locate: Locate::Prefix(&["sk_", "rk_", "pk_live_", "whsec_"]),
    },
    Recognizer {
        entity: Entity::OpenaiApiKey,
        pattern: concat!(wb!(), r"sk-(?:(?:proj|svcacct|admin)-)?[A-Za-z0-9_-]{20,}"),
        check: openai,
        reach: NEAR,
        locate: Locate::Prefix(&["sk-"]),
    },
    Recognizer {
        entity: Entity::GoogleApiKey,
        pattern: concat!(wb!(), r"AIza[0-9A-Za-z_-]{35}"),
        check: |text, r| (!after(text, r.end).is_some_and(is_token_byte)).then_some(r),
        reach: NEAR,
        locate: Locate::Prefix(&["AIza"]),
    },
];

/// Characters of base64url tokens: a match followed by one is part of a longer token.
fn is_token_byte(b: u8) -> bool {
    is_word(b) || b == b'-'
}

/// JWS (3 segments) or JWE (5 segments) whose header is a JSON object with a string `alg`.
/// A trailing empty segment (`…sig.` at the end of a sentence) is not part of the token.
fn jwt(text: &str, r: Range<usize>) -> Option<Range<usize>> {
    let token = &text[r.clone()];
    let segments: Vec<&str> = token.split('.').collect();
    let header = jwt_header(segments.first()?)?;
    let is_jwe = segments.len() == 5 && header.get("enc").is_some();
    let keep = if is_jwe { 5 } else { 3 };
    if segments.len() < keep || segments[1].is_empty() {
        return None;
    }
    let len: usize = segments[..keep].iter().map(|s| s.len()).sum::<usize>() + keep - 1;
    Some(r.start..r.start + len)
}

fn jwt_header(segment: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    // Lenient about padding and trailing bits: the header check, not the codec, is the filter.
    let config = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true);
    let bytes = GeneralPurpose::new(&alphabet::URL_SAFE, config)
        .decode(segment)
        .ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        serde_json::Value::Object(map) if map.get("alg").is_some_and(|a| a.is_string()) => {
            Some(map)
        }
        _ => None,
    }
}

/// The 40-character value after the context key: not continued as base64, high entropy.
fn aws_secret(text: &str, r: Range<usize>) -> Option<Range<usize>> {
    let value = r.end - 40..r.end;
    let continued =
        after(text, r.end).is_some_and(|b| b.is_ascii_alphanumeric() || b"/+=".contains(&b));
    (!continued && entropy(&text[value.clone()]) >= 3.5).then_some(value)
}

fn slack_token(text: &str, r: Range<usize>) -> Option<Range<usize>> {
    let token = text[r.clone()].trim_end_matches('-');
    let body = token.split_once('-')?.1;
    (body.len() >= 10 && body.bytes().any(|b| b.is_ascii_digit()))
        .then_some(r.start..r.start + token.len())
}

/// Masks the path after `services/` (team, channel and secret), keeping the host visible.
fn slack_webhook(text: &str, r: Range<usize>) -> Option<Range<usize>> {
    let m = &text[r.clone()];
    let prefix = m
        .find('/')
        .and_then(|i| m[i + 1..].find('/').map(|j| i + j + 2))?;
    let path = m[prefix..].trim_end_matches('/');
    (path.len() >= 16).then_some(r.start + prefix..r.start + prefix + path.len())
}

fn stripe(text: &str, r: Range<usize>) -> Option<Range<usize>> {
    let random = text[r.clone()].rsplit('_').next()?;
    random.bytes().any(|b| b.is_ascii_digit()).then_some(r)
}

/// Random key material mixes upper case, lower case and digits; `sk-learn-…` does not.
fn openai(text: &str, r: Range<usize>) -> Option<Range<usize>> {
    let token = text[r.clone()].trim_end_matches(['-', '_']);
    let random = token.get(3..).unwrap_or_default();
    (char_classes(random) == 3).then_some(r.start..r.start + token.len())
}
