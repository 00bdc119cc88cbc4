//! The streaming masker: for every split of a text into chunks its output is `mask_text` of
//! the whole text (with the same counts), values split across chunks are found, values longer
//! than the window never come out in clear, and what it holds stays within its bound.

// Test helpers report a broken fixture by panicking with its name.
#![allow(clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::sync::LazyLock;

use portcullis_masking::{Counts, Entity, Masker, ProfileSpec, Strategy, StreamMasker};
use proptest::prelude::*;
use proptest::strategy::Strategy as _;

static MASKER: LazyLock<Masker> = LazyLock::new(|| masker(Strategy::Redact));

fn masker(strategy: Strategy) -> Masker {
    let mut profile = ProfileSpec::builtin_default();
    profile.default_strategy = strategy;
    Masker::new(&[&profile], Some(b"stream-test-key")).expect("masker builds")
}

/// Streams `input` in chunks of `sizes` (cycled; the last chunk takes the rest), checking the
/// memory bound after every chunk; the whole output and the counts.
fn stream(mut s: StreamMasker, input: &[u8], sizes: &[usize]) -> (String, Counts) {
    let mut counts = Counts::default();
    let mut out = Vec::new();
    let mut at = 0;
    for &size in sizes.iter().cycle() {
        if at >= input.len() {
            break;
        }
        let end = at.saturating_add(size.max(1)).min(input.len());
        out.extend(s.push(&input[at..end], &mut counts));
        assert!(
            s.buffered() <= s.max_buffered(),
            "holds {} bytes, bound {}",
            s.buffered(),
            s.max_buffered()
        );
        at = end;
    }
    out.extend(s.finish(&mut counts));
    (String::from_utf8(out).expect("output is UTF-8"), counts)
}

/// Streams `text` cut at `cuts` (stream offsets) and compares with masking it whole.
fn check(m: &Masker, text: &str, cuts: &[usize]) -> Result<String, String> {
    let mut whole_counts = Counts::default();
    let whole = m.mask_text(text, &mut whole_counts).into_owned();
    let mut sizes = Vec::new();
    let mut last = 0;
    for &cut in cuts {
        sizes.push(cut - last);
        last = cut;
    }
    sizes.push(text.len() - last);
    let (got, counts) = stream(m.stream(), text.as_bytes(), &sizes);
    if got != whole || counts != whole_counts {
        return Err(format!(
            "{text:?} cut at {cuts:?}\n    whole  {whole:?}\n    stream {got:?}"
        ));
    }
    Ok(got)
}

/// Each corpus text (matches and near-misses), on a line of its own between others and in
/// the middle of a line, split into two chunks at every byte and into one-byte chunks: the
/// stream gives `mask_text`'s output, and no marked value survives the line of its own.
#[test]
fn corpus_texts_split_anywhere_stream_like_whole_text() {
    let corpus = common::load().expect("corpus.toml parses");
    let mut failures = Vec::new();
    let mut cases = 0;
    for (name, section) in &corpus {
        let entity = name.parse::<Entity>().ok();
        let all = section.matches.iter().chain(&section.miss);
        for marked in all {
            let (text, values) = common::unmark(entity, marked).expect("case parses");
            let framed = [
                format!("first line 42\n{text}\nlast line"),
                format!("see {text} and more"),
            ];
            for (i, input) in framed.iter().enumerate() {
                cases += 1;
                let splits = (0..=input.len())
                    .map(|at| vec![at])
                    .chain([(1..input.len()).collect()]);
                for cuts in splits {
                    match check(&MASKER, input, &cuts) {
                        Err(e) => failures.push(format!("[{name}] {e}")),
                        Ok(out) if i == 0 => {
                            let leaked: Vec<&str> = values
                                .iter()
                                .map(|(_, r)| &text[r.clone()])
                                .filter(|v| out.contains(v))
                                .collect();
                            if !leaked.is_empty() {
                                failures.push(format!("[{name}] {input:?} leaks {leaked:?}"));
                            }
                        }
                        Ok(_) => {}
                    }
                }
            }
        }
    }
    failures.dedup();
    assert!(
        failures.is_empty(),
        "{} of {cases} texts failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Pieces for random texts: clean words, separators, and corpus texts with values in them.
static PIECES: LazyLock<Vec<String>> = LazyLock::new(|| {
    let corpus = common::load().expect("corpus.toml parses");
    let mut pieces: Vec<String> = [
        "the",
        "order",
        "shipped",
        "to",
        "Zürich",
        "🙂",
        "\u{2028}",
        "id",
        "42",
        "2024-03-05",
        " ",
        " ",
        "  ",
        "\n",
        "\n",
        "\t",
        ", ",
        ": ",
        "=",
        "\"",
        "'",
        "\\",
        "-",
        "(",
        ")",
        "{",
        "}",
        "[",
        "]",
        ";",
        "&",
        "\r\n",
        "password",
        "password=",
        "pwd=",
        "token: ",
        "host=db",
        "key",
        "version",
        "v",
        "0",
        "1",
        "9",
        "4111",
        " 1111",
        "1111",
        "+44",
        ".",
        "::",
        ":",
        "@",
        "://",
        "postgres://u:",
        "Bearer ",
        "Basic ",
        "eyJhbGciOiJFUzI1NiJ9",
        ".eyJ4IjoxfQ.",
        "AKIA",
        "ghp_",
        "sk-",
        "xoxb-",
        "AIza",
        "GB82",
        "WEST",
        "ssn ",
        "passport ",
        "fe80",
        "00:1a",
        "-----BEGIN",
        " PRIVATE KEY-----",
        "PRIVATE KEY-----",
        "-----END PRIVATE KEY-----",
        "-----BEGIN PRIVATE KEY-----\nMIIE\n",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for (name, section) in &corpus {
        let entity = name.parse::<Entity>().ok();
        for marked in section.matches.iter().chain(&section.miss) {
            let (text, _) = common::unmark(entity, marked).expect("case parses");
            pieces.push(text);
        }
    }
    pieces
});

/// A text of random pieces and random chunk sizes.
fn text_and_chunks() -> impl proptest::strategy::Strategy<Value = (String, Vec<usize>)> {
    let piece = (0..PIECES.len()).prop_map(|i| PIECES[i].clone());
    (
        prop::collection::vec(piece, 0..24).prop_map(|p| p.concat()),
        prop::collection::vec(1usize..48, 1..16),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Texts mixing clean words and sensitive values, in random chunks: the stream gives
    /// `mask_text`'s output and counts.
    #[test]
    fn random_texts_in_random_chunks_stream_like_whole_text((text, sizes) in text_and_chunks()) {
        let mut whole_counts = Counts::default();
        let whole = MASKER.mask_text(&text, &mut whole_counts).into_owned();
        let (got, counts) = stream(MASKER.stream(), text.as_bytes(), &sizes);
        prop_assert_eq!(got, whole);
        prop_assert_eq!(counts, whole_counts);
    }

    /// Any bytes (invalid UTF-8 included) in random chunks: the stream gives `mask_text` of
    /// the lossily decoded whole.
    #[test]
    fn random_bytes_stream_like_lossy_whole_text(
        parts in prop::collection::vec(
            prop_oneof![
                prop::collection::vec(any::<u8>(), 0..8),
                (0..PIECES.len()).prop_map(|i| PIECES[i].clone().into_bytes()),
                Just("é".as_bytes()[..1].to_vec()),
                Just("🙂".as_bytes()[..3].to_vec()),
            ],
            0..16,
        ),
        sizes in prop::collection::vec(1usize..16, 1..8),
    ) {
        let bytes = parts.concat();
        let text = String::from_utf8_lossy(&bytes);
        let mut whole_counts = Counts::default();
        let whole = MASKER.mask_text(&text, &mut whole_counts).into_owned();
        let (got, counts) = stream(MASKER.stream(), &bytes, &sizes);
        prop_assert_eq!(got, whole);
        prop_assert_eq!(counts, whole_counts);
    }
}

/// Streams `before`, `value`, `after` in chunks of `sizes` through a stream with `window`:
/// none of the value's 12-byte pieces may come out, something must be counted, and the value
/// must not come out at all (the output is less than half the input).
fn leak_check(
    m: &Masker,
    window: usize,
    (before, value, after): (&str, &str, &str),
    sizes: &[usize],
) -> Result<(), String> {
    let input = format!("{before}{value}{after}");
    let (out, counts) = stream(m.stream().with_window(window), input.as_bytes(), sizes);
    let grams: HashSet<&[u8]> = out.as_bytes().windows(12).collect();
    if let Some(piece) = value.as_bytes().windows(12).find(|g| grams.contains(g)) {
        let piece = String::from_utf8_lossy(piece);
        return Err(format!(
            "{before:?}… in chunks {sizes:?}: {piece:?} came out"
        ));
    }
    if counts.is_empty() || out.len() >= input.len() / 2 {
        return Err(format!("{before:?}…: {} bytes out, {counts:?}", out.len()));
    }
    Ok(())
}

/// Values far longer than the window (in [`MIN_WINDOW`](StreamMasker::MIN_WINDOW) streams),
/// with the text around them.
static LONG_VALUES: LazyLock<Vec<(String, String, String)>> = LazyLock::new(|| {
    let w = StreamMasker::MIN_WINDOW;
    let token = random(BASE62, 6 * w, 1);
    let key = format!(
        "-----BEGIN RSA PRIVATE KEY-----\n{}-----END RSA PRIVATE KEY-----",
        pem_body(100)
    );
    let half = key[..key.len() / 2].to_owned();
    [
        ("config\npassword=", token.as_str(), "\nnext line\n"),
        ("Authorization: Bearer ", &token, " trailing words\n"),
        ("url postgres://app:", &token, "@db.internal/app\n"),
        ("hex ", &random(b"0123456789abcdef", 5 * w, 2), " end\n"),
        ("key:\n", &key, "\nafter the key 10.0.0.1\n"),
        // A block that never ends.
        ("truncated ", &half, ""),
    ]
    .into_iter()
    .map(|(b, v, a)| (b.to_owned(), v.to_owned(), a.to_owned()))
    .collect()
});

#[test]
fn values_longer_than_the_window_never_leak() {
    let w = StreamMasker::MIN_WINDOW;
    let chunkings: [&[usize]; 7] = [
        &[usize::MAX],
        &[1],
        &[3, 1, 7],
        &[64],
        &[w - 1],
        &[w + 1],
        &[5000, 13],
    ];
    let mut failures = Vec::new();
    for (before, value, after) in LONG_VALUES.iter() {
        for sizes in chunkings {
            if let Err(e) = leak_check(&MASKER, w, (before, value, after), sizes) {
                failures.push(e);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// The same, in random chunkings.
    #[test]
    fn values_longer_than_the_window_never_leak_in_random_chunks(
        which in 0..LONG_VALUES.len(),
        sizes in prop::collection::vec(1usize..3000, 1..24),
    ) {
        let (before, value, after) = &LONG_VALUES[which];
        let checked = leak_check(&MASKER, StreamMasker::MIN_WINDOW, (before, value, after), &sizes);
        prop_assert!(checked.is_ok(), "{}", checked.unwrap_err());
    }
}

/// Deterministic pseudo-random text over `alphabet`.
fn random(alphabet: &[u8], len: usize, mut seed: u64) -> String {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            char::from(alphabet[(seed % alphabet.len() as u64) as usize])
        })
        .collect()
}

const BASE62: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn pem_body(lines: usize) -> String {
    (0..lines)
        .map(|i| random(BASE64, 64, 7 + i as u64) + "\n")
        .collect()
}

/// A PEM block on lines of its own is masked exactly as `mask_text` masks it, however much
/// longer than the window, under every strategy.
#[test]
fn long_private_keys_stream_like_whole_text() {
    let key = format!(
        "-----BEGIN PRIVATE KEY-----\n{}-----END PRIVATE KEY-----",
        pem_body(4000)
    );
    let text = format!("id 1\n{key}\nmail bob@example.com\n");
    assert!(key.len() > 3 * StreamMasker::DEFAULT_WINDOW);
    for strategy in [
        Strategy::Redact,
        Strategy::Hmac,
        Strategy::Partial { keep: 4 },
        Strategy::Null,
    ] {
        let m = masker(strategy);
        let mut whole_counts = Counts::default();
        let whole = m.mask_text(&text, &mut whole_counts).into_owned();
        for sizes in [vec![text.len()], vec![1000], vec![7, 65_537]] {
            let (got, counts) = stream(m.stream(), text.as_bytes(), &sizes);
            assert_eq!(got, whole, "{strategy:?} in chunks of {sizes:?}");
            assert_eq!(counts, whole_counts);
        }
    }
}

/// A key that arrives a line at a time (a terminal, `kubectl logs`, an SSH session) is masked
/// whole: no line of its body comes out.
#[test]
fn a_private_key_pushed_line_by_line_is_masked_whole() {
    let body = pem_body(26);
    let text = format!(
        "$ cat id_rsa\n-----BEGIN RSA PRIVATE KEY-----\n{body}-----END RSA PRIVATE KEY-----\n$ exit\n"
    );
    let m = masker(Strategy::Redact);
    let mut whole_counts = Counts::default();
    let whole = m.mask_text(&text, &mut whole_counts).into_owned();
    let lines: Vec<usize> = text.split_inclusive('\n').map(str::len).collect();
    let (got, counts) = stream(m.stream(), text.as_bytes(), &lines);
    assert_eq!(got, whole);
    assert_eq!(counts, whole_counts);
    for line in body.lines() {
        assert!(!got.contains(line), "{line} came out in clear");
    }
    assert!(
        got.starts_with("$ cat id_rsa\n") && got.ends_with("\n$ exit\n"),
        "{got}"
    );
}

/// Megabytes without whitespace: a hex run is one long possible value (it could be the local
/// part of an e-mail address), masked whole while the masker never holds more than its bound;
/// a base64 blob has cut points (`/` ends every candidate) and streams like the whole text.
#[test]
fn memory_stays_bounded_without_whitespace() {
    let hex = random(b"0123456789abcdef", 3 << 20, 3);
    let blob = random(BASE64, 3 << 20, 4);
    for sizes in [vec![1 << 20], vec![65_537], vec![4096, 7]] {
        for input in [format!("api_key={hex}"), hex.clone()] {
            let (out, counts) = stream(MASKER.stream(), input.as_bytes(), &sizes);
            assert!(out.len() < 1 << 10, "{} bytes out", out.len());
            assert_eq!(counts.get(Entity::GenericSecret), 1);
        }
        let (out, _) = stream(MASKER.stream(), blob.as_bytes(), &sizes);
        assert!(out == MASKER.mask_text(&blob, &mut Counts::default()));
    }
}

/// The window bound is what the docs say, and a small window is respected too; a stream can
/// move between threads (a door's tasks).
#[test]
fn window_bounds() {
    fn send<T: Send>(_: &T) {}
    send(&MASKER.stream());
    let s = MASKER.stream();
    assert_eq!(s.window(), StreamMasker::DEFAULT_WINDOW);
    assert_eq!(
        s.max_buffered(),
        StreamMasker::DEFAULT_WINDOW + StreamMasker::CONTEXT + 22
    );
    let s = MASKER.stream().with_window(1);
    assert_eq!(s.window(), StreamMasker::MIN_WINDOW);
    let text = format!("x {}\n", random(b"0123456789abcdef", 10_000, 5));
    let (_, counts) = stream(s, text.as_bytes(), &[100]);
    assert_eq!(counts.get(Entity::GenericSecret), 1);
}

/// Output comes as soon as nothing can run across it: a line that ends, a word followed by a
/// space; a value split across chunks comes out masked once it is complete.
#[test]
fn output_is_not_held_longer_than_needed() {
    let mut s = MASKER.stream();
    let mut counts = Counts::default();
    let mut push = |chunk: &str| String::from_utf8(s.push(chunk.as_bytes(), &mut counts));
    assert_eq!(push("ls -la\n").as_deref(), Ok("ls -la\n"));
    assert_eq!(push("mail alice@exa").as_deref(), Ok("mail "));
    assert_eq!(push("mple.com and").as_deref(), Ok("[EMAIL] "));
    assert_eq!(push(" more\n").as_deref(), Ok("and more\n"));
    assert_eq!(push("card 4111 1111").as_deref(), Ok("card "));
    assert_eq!(push(" 1111 1111.\n").as_deref(), Ok("[CREDIT_CARD].\n"));
    assert_eq!(s.finish(&mut counts), b"");
    assert_eq!(counts.get(Entity::Email), 1);
    assert_eq!(counts.get(Entity::CreditCard), 1);
}

/// Validators that look around a value see the same context in a stream as in the whole
/// text: connection-string markers up to 256 bytes before or after a `password=`, a version
/// keyword lines before an address, `://` before an e-mail-like userinfo.
#[test]
fn validators_see_their_context_across_chunks() {
    let mut texts = Vec::new();
    for gap in [0, 100, 240, 245, 250, 255, 256, 300] {
        let pad = " ".repeat(gap);
        texts.push(format!("Pwd={{a;b}}{pad}host=db\nnext\n"));
        texts.push(format!("host=db{pad}Pwd={{a;b}}\nnext\n"));
        texts.push(format!("password=s3cret {pad} server=x;\n"));
    }
    texts.push("release:\n\n  10.2.0.1 and 10.2.0.2\n".to_owned());
    // The context kept never starts inside a word: here `version` is not a keyword.
    for gap in 235..260 {
        texts.push(format!("xversion{}1.2.3.4\n", " ".repeat(gap)));
    }
    texts.push("see https://user@example.com/x and user@example.com\n".to_owned());
    let mut failures = Vec::new();
    for text in &texts {
        let mut splits: Vec<Vec<usize>> = (0..=text.len()).map(|at| vec![at]).collect();
        splits.push((1..text.len()).collect());
        for cuts in splits {
            if let Err(e) = check(&MASKER, text, &cuts) {
                failures.push(e);
            }
        }
    }
    failures.dedup();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The one documented difference within the window: the IPv4 version test skips whitespace
/// backwards further than the context kept, so after a long run of it the stream masks an
/// address that `mask_text` leaves (more masking, never less).
#[test]
fn a_version_keyword_beyond_the_context_is_not_seen() {
    let text = format!("version{}1.2.3.4\n", " ".repeat(400));
    let whole = MASKER.mask_text(&text, &mut Counts::default()).into_owned();
    assert!(whole.contains("1.2.3.4"));
    let (streamed, _) = stream(MASKER.stream(), text.as_bytes(), &[64]);
    assert!(streamed.contains("[IPV4]") && !streamed.contains("1.2.3.4"));
}
