//! The kinds of sensitive value the masker knows, their labels and their priority.
//!
//! Each variant documents its pattern, its validator and what it may miss or falsely hit; the
//! recognizers themselves live in `recognizers/`.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// A kind of sensitive value. The label ([`Entity::as_str`]) is what appears in redactions,
/// HMAC tokens, counters and the audit event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Entity {
    /// PEM private keys (`-----BEGIN [RSA |EC |OPENSSH |ENCRYPTED |PGP ]PRIVATE KEY[ BLOCK]-----`),
    /// masked as a whole block up to the matching `-----END …-----`, or to the end of the text
    /// when the block is truncated. No validator: the armour line is unambiguous. Misses keys
    /// that lost their armour (bare base64).
    PrivateKey,
    /// JSON Web Tokens: three (or five, JWE) base64url segments starting `eyJ`; the header must
    /// decode to a JSON object with a string `"alg"`. Misses tokens whose header is not
    /// canonical base64url; cannot hit random base64 because of the header check.
    Jwt,
    /// AWS access key ids: `AKIA`/`ASIA`/`ABIA`/`ACCA`/`A3T?` followed by 16 base32 characters
    /// (`[A-Z2-7]`), bounded by non-word characters. No checksum exists, so any 20-character
    /// string of that shape hits.
    AwsAccessKeyId,
    /// AWS secret access keys: 40 base64 characters, only after a context key such as
    /// `aws_secret_access_key`, `secret_access_key=` or `"SecretAccessKey":`; the value must
    /// not continue as base64 and must have Shannon entropy ≥ 3.5 bits/char. Misses bare
    /// secrets without such context (indistinguishable from any base64 blob).
    AwsSecretAccessKey,
    /// GitHub tokens: `ghp_`/`gho_`/`ghu_`/`ghs_`/`ghr_` + ≥ 36 alphanumerics and
    /// `github_pat_` + ≥ 30 of `[A-Za-z0-9_]`. The CRC in classic tokens is not checked, so a
    /// made-up string of the right shape hits.
    GithubToken,
    /// Slack tokens (`xoxb-`, `xoxp-`, `xoxa-`, `xoxr-`, `xoxs-`, `xoxo-`, `xoxe-`, `xapp-`
    /// followed by ≥ 10 of `[A-Za-z0-9-]` with at least one digit) and incoming-webhook paths
    /// (`hooks.slack.com/services/…`, the path after `services/` is masked).
    SlackToken,
    /// Stripe keys: `sk_live_`, `sk_test_`, `rk_live_`, `rk_test_`, `pk_live_` and `whsec_`
    /// followed by alphanumerics containing at least one digit. `pk_test_` keys are public by
    /// design and are not matched. Misses keys glued to a preceding word character
    /// (`mysk_live_…`).
    StripeKey,
    /// OpenAI-style keys: `sk-`, `sk-proj-`, `sk-svcacct-`, `sk-admin-` followed by ≥ 20 of
    /// `[A-Za-z0-9_-]` that mix upper case, lower case and digits. Other vendors' `sk-` keys
    /// (Anthropic `sk-ant-…`) are masked under this label too.
    OpenaiApiKey,
    /// Google API keys: `AIza` followed by exactly 35 of `[A-Za-z0-9_-]`. No checksum.
    GoogleApiKey,
    /// Secrets in assignment context: a key containing `password`, `passwd`, `passphrase`,
    /// `pass`, `pwd`, `secret`, `token`, `api_key`, `apikey`, `access_key`, `auth_key`,
    /// `private_key` or `credential(s)` (`pass`/`pwd` only at an identifier boundary; the name
    /// may go on as a new part, `token_type`, not as a longer word, `tokens`, `passenger`),
    /// then `=`, `:` or `=>`, then a quoted or bare value (a bare value after `=` ends at `&`);
    /// also `Bearer <token>` and `Basic <base64 of user:pass>`. Only the value is masked.
    /// Password-like keys accept any value of ≥ 3 characters that is not a placeholder
    /// (`${VAR}`, `$VAR` with no lower case, `$(cmd)`, `%(name)s`, `<password>`, `[secret]`,
    /// `****`, `null`, `String`, `changeme`, a call like `getpass()`, a path for `PWD`; a value
    /// that only starts like one, `$ecr3tP4ss`, is a password); other keys need ≥ 8 characters, two character classes and Shannon entropy
    /// ≥ min(3.5, log2(len) − 0.5) bits/char. May hit ordinary settings whose key contains
    /// `token`/`secret` and whose value looks random; misses secrets stated in prose (`the
    /// password is hunter2`) and values glued to a rejected name (`bypass_token=…`).
    GenericSecret,
    /// Passwords inside connection strings: URL userinfo (`scheme://user:PASSWORD@host`, the
    /// last `@` of the authority ends the password) and `password=`/`pwd=` in libpq or ADO.NET
    /// key/value strings, the latter only when another connection key (`host=`, `server=`,
    /// `dbname=`, `user id=`, `://`, …) is within 256 bytes. Only the password is masked.
    ConnectionStringPassword,
    /// Payment card numbers: 13–19 digits, bare or in groups of four (or Amex/Diners 4-6-5 and
    /// 4-6-4) separated consistently by spaces or dashes; the issuer prefix must be a known IIN
    /// range with a length it issues, and the Luhn check must pass. About one random number in
    /// ten with a card-like prefix passes, so long numeric ids starting with 2–6 can hit. Not a
    /// card when it lies inside another finding of payment, government, contact or network
    /// data: the digits of an IBAN, or of `+49 …` telephone number, that pass Luhn.
    CreditCard,
    /// IBANs (ISO 13616): country code, two check digits and the BBAN, bare or in groups of four;
    /// the length must be the country's registered length and mod-97 must equal 1. Lower-case
    /// IBANs are not matched.
    Iban,
    /// US social security numbers: `AAA-GG-SSSS` or `AAA GG SSSS`, or nine bare digits right after
    /// `SSN`/`social security (number)`. Area not 000, 666 or 9xx; group not 00; serial not 0000.
    /// Any other number of that dashed shape hits (part numbers, for instance).
    UsSsn,
    /// E-mail addresses: RFC 5321-ish local part, dotted domain with a 2–24 letter top-level
    /// label. Rejects file names like `icon@2x.png` and URL userinfo (`scheme://user@host`,
    /// `scheme://user:pass@host`: a `://` earlier in the same token);
    /// a local part with `..` is masked from after the dots. Misses quoted local parts and IDN
    /// domains.
    Email,
    /// Telephone numbers: E.164-style `+CC …` (8–15 digits, groups separated by space, dot or
    /// dash, optional parentheses; a run that continues into a following number is cut back),
    /// North American `(415) 555-0132` / `415-555-0132` / `415.555.0132`, and national
    /// trunk-prefix forms `020 7946 0958`, `07700 900123`, `01 23 45 67 89` (9–12 digits, one
    /// separator kind). Never plain digit runs. Rejects date layouts, ZIP+4, the SSN layout and
    /// dash-separated pairs, and national and North American candidates one space from a lone
    /// group of digits and letters (the groups of an IBAN or card number that failed its own
    /// check, a hex dump); can still hit numeric layouts such as `0123 456 789` part numbers.
    Phone,
    /// IPv4 addresses: four dotted octets ≤ 255, not part of a longer dotted run (`1.2.3.4.5`,
    /// OIDs), not a version (`v1.2.3.4`, `version 1.2.3.4`, `1.2.3.4-beta`, `1.2.3.4+build`).
    /// Versions written without such a marker (`release: 1.2.3.4`) still hit.
    Ipv4,
    /// IPv6 addresses: colon-separated hex groups parsed by [`std::net::Ipv6Addr`], with at least
    /// two non-empty groups and four hex digits (`::1` and `::` do not count), not glued to
    /// identifiers (`std::net`), and not eight two-digit groups (those are EUI-64 MACs).
    Ipv6,
    /// MAC addresses: six (or eight, EUI-64) two-digit hex groups separated by `:` or `-`, or the
    /// Cisco `xxxx.xxxx.xxxx` form; must contain a decimal digit (dotted form: a digit and a
    /// letter) and not be part of a longer group run. Six colon-separated number pairs such as
    /// `12:30:45:12:34:56` hit.
    MacAddress,
    /// UK National Insurance numbers: two prefix letters (first not D, F, I, Q, U, V; second
    /// not D, F, I, O, Q, U, V; not BG, GB, KN, NK, NT, TN, ZZ), six digits, suffix A–D, spaced
    /// all-or-nothing. Upper case only; temporary numbers without a suffix are missed.
    UkNino,
    /// US passport numbers: nine digits or a letter and eight digits, only right after
    /// `passport` (optionally `number`/`no`/`id`). Misses numbers without that context.
    UsPassport,
    /// Dates of birth. Column rules only (`dob`, `date_of_birth`, …): no value recognizer, since
    /// a bare date cannot be told from any other date.
    DateOfBirth,
}

impl Entity {
    /// Every entity, in declaration order.
    pub const ALL: [Entity; 22] = [
        Entity::PrivateKey,
        Entity::Jwt,
        Entity::AwsAccessKeyId,
        Entity::AwsSecretAccessKey,
        Entity::GithubToken,
        Entity::SlackToken,
        Entity::StripeKey,
        Entity::OpenaiApiKey,
        Entity::GoogleApiKey,
        Entity::GenericSecret,
        Entity::ConnectionStringPassword,
        Entity::CreditCard,
        Entity::Iban,
        Entity::UsSsn,
        Entity::Email,
        Entity::Phone,
        Entity::Ipv4,
        Entity::Ipv6,
        Entity::MacAddress,
        Entity::UkNino,
        Entity::UsPassport,
        Entity::DateOfBirth,
    ];

    /// Number of entities (the length of per-entity arrays).
    pub const COUNT: usize = Entity::ALL.len();

    /// The SCREAMING_SNAKE label, e.g. `"CREDIT_CARD"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Entity::PrivateKey => "PRIVATE_KEY",
            Entity::Jwt => "JWT",
            Entity::AwsAccessKeyId => "AWS_ACCESS_KEY_ID",
            Entity::AwsSecretAccessKey => "AWS_SECRET_ACCESS_KEY",
            Entity::GithubToken => "GITHUB_TOKEN",
            Entity::SlackToken => "SLACK_TOKEN",
            Entity::StripeKey => "STRIPE_KEY",
            Entity::OpenaiApiKey => "OPENAI_API_KEY",
            Entity::GoogleApiKey => "GOOGLE_API_KEY",
            Entity::GenericSecret => "GENERIC_SECRET",
            Entity::ConnectionStringPassword => "CONNECTION_STRING_PASSWORD",
            Entity::CreditCard => "CREDIT_CARD",
            Entity::Iban => "IBAN",
            Entity::UsSsn => "US_SSN",
            Entity::Email => "EMAIL",
            Entity::Phone => "PHONE",
            Entity::Ipv4 => "IPV4",
            Entity::Ipv6 => "IPV6",
            Entity::MacAddress => "MAC_ADDRESS",
            Entity::UkNino => "UK_NINO",
            Entity::UsPassport => "US_PASSPORT",
            Entity::DateOfBirth => "DATE_OF_BIRTH",
        }
    }

    /// Position in [`Entity::ALL`], for per-entity arrays.
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// Overlap priority, lower wins (DESIGN.md §6: secrets first, then payment data, government
    /// ids, contact data and network addresses).
    /// Payment, government, contact and network data: everything ranked after the secrets.
    pub(crate) fn is_data(self) -> bool {
        self.rank() > Entity::GenericSecret.rank()
    }

    pub(crate) fn rank(self) -> u8 {
        match self {
            Entity::PrivateKey => 0,
            Entity::Jwt => 1,
            Entity::ConnectionStringPassword => 2,
            Entity::AwsAccessKeyId => 3,
            Entity::AwsSecretAccessKey => 4,
            Entity::GithubToken => 5,
            Entity::SlackToken => 6,
            Entity::StripeKey => 7,
            Entity::OpenaiApiKey => 8,
            Entity::GoogleApiKey => 9,
            Entity::GenericSecret => 10,
            Entity::CreditCard => 11,
            Entity::Iban => 12,
            Entity::UsSsn => 13,
            Entity::UkNino => 14,
            Entity::UsPassport => 15,
            Entity::DateOfBirth => 16,
            Entity::Email => 17,
            Entity::Phone => 18,
            Entity::Ipv6 => 19,
            Entity::Ipv4 => 20,
            Entity::MacAddress => 21,
        }
    }
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Entity {
    type Err = Error;

    /// Parses a label, ignoring ASCII case (`"credit_card"` and `"CREDIT_CARD"` both work).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Entity::ALL
            .into_iter()
            .find(|e| e.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| Error::UnknownEntity(s.to_owned()))
    }
}
