//! Internal tests of the streaming pieces: the UTF-8 decoder, the count opening, the frontier's
//! cut points and the piecewise renderer. End-to-end behaviour is in `tests/stream.rs`.

use super::frontier::{Frontier, Recent, Walk};
use super::utf8::Decoder;
use super::*;
use crate::strategy::Renderer;
use crate::{ProfileSpec, Strategy};

/// A tiny deterministic PRNG (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn decoder_matches_from_utf8_lossy_for_any_chunking() {
    let pieces: &[&[u8]] = &[
        b"a",
        b" ",
        "é".as_bytes(),
        "🙂".as_bytes(),
        &[0xE2, 0x82],
        &[0xF0, 0x9F],
        &[0x80],
        &[0xFF],
        &[0xC3],
        &[0xED, 0xA0, 0x80],
        &[0xF4, 0x90, 0x80, 0x80],
        &[0xE0, 0x80],
    ];
    let mut rng = Rng(0x5eed);
    for _ in 0..5_000 {
        let bytes: Vec<u8> = (0..rng.below(12))
            .flat_map(|_| pieces[rng.below(pieces.len())].iter().copied())
            .collect();
        let mut decoder = Decoder::default();
        let mut out = String::new();
        let mut at = 0;
        while at < bytes.len() {
            let end = (at + 1 + rng.below(4)).min(bytes.len());
            decoder.decode(&bytes[at..end], &mut out);
            assert!(decoder.pending() <= 3);
            at = end;
        }
        decoder.finish(&mut out);
        assert_eq!(out, String::from_utf8_lossy(&bytes), "{bytes:x?}");
    }
}

#[test]
fn counted_repetitions_are_opened() {
    let cases = [
        (r"[0-9]{1,3}", r"[0-9]+"),
        (r"(?:x ){0,3}y", r"(?:x )*y"),
        (r"a{16}b{36,}", r"a+b+"),
        (r"\{[^}\r\n]+\}", r"\{[^}\r\n]+\}"),
        (r"[{]{2}", r"[{]+"),
        (r"[]{}]{0,2}", r"[]{}]*"),
        (r"x{,3}", r"x{,3}"),
        (r"\\{2}", r"\\+"),
    ];
    for (pattern, want) in cases {
        assert_eq!(super::frontier::without_counts(pattern), want, "{pattern}");
    }
    // Every recognizer still compiles once opened.
    for r in recognizers::all() {
        let loose = super::frontier::without_counts(r.pattern);
        assert!(regex_automata::meta::Regex::new(&loose).is_ok(), "{loose}");
    }
}

#[test]
fn tables_build_for_any_set_of_recognizers() {
    let sets: [&[Entity]; 4] = [
        &Entity::ALL,
        &[Entity::Email, Entity::CreditCard],
        &[Entity::PrivateKey],
        &[],
    ];
    for entities in sets {
        let engine = crate::engine::Engine::new(entities).expect("engine builds");
        let tables = Tables::new(engine.recognizers()).expect("tables build");
        assert_eq!(tables.frontier.is_some(), !entities.is_empty());
        assert_eq!(tables.pem.is_some(), entities.contains(&Entity::PrivateKey));
    }
}

fn frontier() -> Frontier {
    let engine = crate::engine::Engine::new(&Entity::ALL).expect("engine builds");
    let tables = Tables::new(engine.recognizers()).expect("tables build");
    tables.frontier.expect("recognizers given")
}

/// The positions of `text` (strictly inside it) that nothing crosses.
fn cut_points(frontier: &Frontier, text: &str) -> Vec<usize> {
    let mut walk = Walk::new(frontier);
    let mut cuts = Vec::new();
    for (i, &b) in text.as_bytes().iter().enumerate() {
        if !walk.step(frontier, b) && i >= 2 {
            cuts.push(i - 1);
        }
    }
    if !walk.end(frontier) && text.len() >= 2 {
        cuts.push(text.len() - 1);
    }
    cuts
}

#[test]
fn spaces_inside_values_are_not_cut_points() {
    let f = frontier();
    let text = "card 4111 1111 1111 1111 and the end";
    let cuts = cut_points(&f, text);
    let card = text.find('4').unwrap_or_default()..text.find(" and").unwrap_or_default();
    assert!(
        cuts.iter().all(|c| !(card.start + 1..card.end).contains(c)),
        "{cuts:?}"
    );
    // Both sides of the spaces between ordinary words are cut points.
    for word in [" the", " end"] {
        let at = text.find(word).unwrap_or_default();
        assert!(
            cuts.contains(&at) && cuts.contains(&(at + 1)),
            "{word}: {cuts:?}"
        );
    }
    let quoted = "password = \"two words\" then";
    let cuts = cut_points(&f, quoted);
    let end = quoted.rfind('"').unwrap_or_default();
    assert!(cuts.iter().all(|&c| c > end), "{cuts:?}");
    // A line break ends everything but a PEM block.
    let lines = "ssn 123 45\n6789";
    assert!(cut_points(&f, lines).contains(&(lines.find('\n').unwrap_or_default() + 1)));
}

#[test]
fn alive_at_the_end_of_the_input() {
    let f = frontier();
    for (text, alive) in [
        ("hello ", false),
        ("hello", true),
        ("done.\n", false),
        ("password = ", true),
        ("card 4111 ", true),
        ("-----BEGIN PRIVATE KEY-----", true),
    ] {
        let mut walk = Walk::new(&f);
        for &b in text.as_bytes() {
            walk.step(&f, b);
        }
        let recent = Recent {
            before: None,
            bytes: text.as_bytes(),
        };
        assert_eq!(walk.alive(&f, recent), alive, "{text:?}");
    }
}

#[test]
fn a_run_renders_like_the_whole_value() {
    let renderer = Renderer::new(Some(b"key"));
    let values = [
        "",
        "a",
        "abcd",
        "abcde",
        "héllo\tw\"orld\\",
        &"x".repeat(300),
    ];
    let strategies = [
        Strategy::Redact,
        Strategy::Null,
        Strategy::Hmac,
        Strategy::Partial { keep: 0 },
        Strategy::Partial { keep: 4 },
        Strategy::Partial { keep: 100 },
    ];
    let mut rng = Rng(7);
    for value in values {
        for strategy in strategies {
            let mut whole = String::new();
            renderer.render(strategy, Entity::PrivateKey, value, &mut whole);
            let mut pieces = String::new();
            let mut run = RunRenderer::begin(&renderer, strategy, Entity::PrivateKey, &mut pieces);
            let mut rest = value;
            while !rest.is_empty() {
                let mut at = 1 + rng.below(rest.len());
                while !rest.is_char_boundary(at) {
                    at += 1;
                }
                run.feed(&rest[..at], &mut pieces);
                rest = &rest[at..];
            }
            run.finish(&mut pieces);
            assert_eq!(pieces, whole, "{strategy:?} {value:?}");
        }
    }
}

#[test]
fn a_masker_without_recognizers_streams_text_unchanged() {
    let profile = ProfileSpec {
        entities: Vec::new(),
        columns: Vec::new(),
        default_strategy: Strategy::Redact,
        strategies: Vec::new(),
    };
    let masker = Masker::new(&[&profile], None).expect("masker builds");
    let mut stream = masker.stream();
    let mut counts = Counts::default();
    let mut out = stream.push(b"mail alice@example.com\n", &mut counts);
    out.extend(stream.finish(&mut counts));
    assert_eq!(out, b"mail alice@example.com\n");
    assert!(counts.is_empty());
}

/// A walk whose cache is cleared again and again (and rebuilt after asking `alive`) finds the
/// same cut points as one that never clears.
#[test]
fn a_cleared_cache_changes_no_cut_point() {
    let engine = crate::engine::Engine::new(&Entity::ALL).expect("engine builds");
    let header = format!("{}(?s:.)", recognizers::PEM_BEGIN);
    let patterns: Vec<&str> = engine
        .recognizers()
        .iter()
        .map(|r| {
            if r.pattern == recognizers::PEM {
                header.as_str()
            } else {
                r.pattern
            }
        })
        .collect();
    let big = Frontier::new(&patterns)
        .expect("builds")
        .expect("patterns given");
    let small = (1..64)
        .find_map(|kib| Frontier::with_cache(&patterns, kib << 12).ok())
        .flatten()
        .expect("a small cache is accepted");
    let pieces = [
        "a",
        "Z",
        "7",
        " ",
        "\n",
        "-",
        ".",
        ":",
        "@",
        "=",
        "\"",
        "+44 ",
        "4111 ",
        "GB82 ",
        "password = ",
        "eyJhbGciOiJIUzI1NiJ9.",
        "ghp_",
        "é",
        "AKIA",
        "-----BEGIN PRIVATE KEY-----",
    ];
    let mut rng = Rng(11);
    let (mut walk_big, mut walk_small) = (Walk::new(&big), Walk::new(&small));
    let mut text = Vec::new();
    let mut since = 0;
    for _ in 0..20_000 {
        let piece = pieces[rng.below(pieces.len())].as_bytes();
        for &b in piece {
            text.push(b);
            let (x, y) = (walk_big.step(&big, b), walk_small.step(&small, b));
            assert_eq!(x, y, "at {}", text.len());
            // Byte `i` tells about position `i - 1`.
            if !x && text.len() >= 2 {
                since = text.len() - 2;
            }
        }
        let recent = Recent {
            before: since.checked_sub(1).map(|i| text[i]),
            bytes: &text[since..],
        };
        let (x, y) = (
            walk_big.alive(&big, recent),
            walk_small.alive(&small, recent),
        );
        assert_eq!(x, y, "alive at {}", text.len());
        if !x {
            since = text.len();
        }
    }
    assert!(
        walk_small.clears() > walk_big.clears(),
        "{} clears",
        walk_small.clears()
    );
}
