//! Speed and accuracy of the masking engine on a generated, labelled corpus
//! (`corpus/mod.rs`), one thread, the built-in `default` profile:
//!
//! ```text
//! cargo run --release -p portcullis-masking --example speed [-- --mb 21 --write-corpus DIR]
//! ```
//!
//! Prints Markdown tables: throughput of `mask_text` and `find` on short values, chunks and
//! whole texts of a clean and a dense corpus (`--mb` MB each), beside a naive baseline of one
//! regex per entity (`speed/naive.rs`); the streaming masker; the masking of short clean
//! column values; accuracy per entity and hard negatives hit (`speed/accuracy.rs`, the
//! individual problems go to stderr); worst-case inputs. Each figure repeats its
//! measurement until `SPEED_SECS` (default 0.5) seconds have passed, after a warm-up over up
//! to 1 MB of its input (enough to fill the lazy DFA caches; a full pass over a 21 MB text
//! would double the run for nothing).
//!
//! `--write-corpus DIR` writes `DIR/dense.jsonl` and `DIR/clean.jsonl` (one object per piece
//! of about 4 KB cut at line ends: text, labels and negatives with byte offsets) and
//! `DIR/speed.json` (the dense 4 KB figures, and precision and recall over the entities
//! Presidio knows too) for `bench/masking/run.sh` and `presidio.py`.

// A benchmark: a profile that does not compile or a file that cannot be written is a
// failure to report loudly.
#![allow(clippy::expect_used)]

#[path = "corpus/mod.rs"]
mod corpus;

#[path = "speed/accuracy.rs"]
mod accuracy;
#[path = "speed/naive.rs"]
mod naive;

use std::hint::black_box;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use portcullis_masking::{ColumnPlan, Counts, Entity, Masker, ProfileSpec};

use corpus::Corpus;
use naive::Naive;

const SEED: u64 = 0x5eed_c0a1_2024;
const KB: usize = 1024;
const MB: usize = 1024 * 1024;
/// How much of an input the warm-up runs over.
const WARM_UP: usize = MB;
/// The entities Presidio's predefined recognizers find too (`bench/masking/presidio.py`).
const SHARED: [Entity; 10] = [
    Entity::Email,
    Entity::CreditCard,
    Entity::Iban,
    Entity::UsSsn,
    Entity::Phone,
    Entity::Ipv4,
    Entity::Ipv6,
    Entity::UkNino,
    Entity::UsPassport,
    Entity::MacAddress,
];

struct Args {
    mb: usize,
    write_corpus: Option<PathBuf>,
}

fn args() -> Args {
    let mut args = Args {
        mb: 21,
        write_corpus: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match (arg.as_str(), it.next()) {
            ("--mb", Some(n)) => args.mb = n.parse().expect("--mb takes a number of megabytes"),
            ("--write-corpus", Some(dir)) => args.write_corpus = Some(dir.into()),
            _ => {
                eprintln!("usage: speed [--mb N] [--write-corpus DIR]");
                std::process::exit(2);
            }
        }
    }
    args
}

/// Repeats measurements for at least `secs` seconds each.
struct Timer {
    secs: f64,
}

/// What one measurement achieved.
#[derive(Clone, Copy)]
struct Rate {
    bytes_per_sec: f64,
    pieces_per_sec: f64,
}

impl Rate {
    fn mb(self) -> f64 {
        self.bytes_per_sec / MB as f64
    }
}

impl Timer {
    /// Runs `op` over every piece, repeatedly, after warming up on the first megabyte.
    fn run(&self, pieces: &[&str], mut op: impl FnMut(&str)) -> Rate {
        let mut warmed = 0;
        for p in pieces {
            if warmed >= WARM_UP {
                break;
            }
            let take = floor_boundary(p, WARM_UP - warmed);
            op(&p[..take]);
            warmed += take.max(1);
        }
        let bytes: usize = pieces.iter().map(|p| p.len()).sum();
        let start = Instant::now();
        let mut passes = 0u32;
        loop {
            for p in pieces {
                op(p);
            }
            passes += 1;
            let elapsed = start.elapsed().as_secs_f64();
            if elapsed >= self.secs {
                let per_sec = f64::from(passes) / elapsed;
                return Rate {
                    bytes_per_sec: per_sec * bytes as f64,
                    pieces_per_sec: per_sec * pieces.len() as f64,
                };
            }
        }
    }
}

/// The largest char boundary of `s` at or below `at`.
fn floor_boundary(s: &str, at: usize) -> usize {
    let mut at = at.min(s.len());
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// `text` cut into pieces of at most `size` bytes at char boundaries.
pub(crate) fn chunks(text: &str, size: usize) -> Vec<&str> {
    let mut out = Vec::with_capacity(text.len() / size + 1);
    let mut rest = text;
    while !rest.is_empty() {
        let mut at = floor_boundary(rest, size);
        if at == 0 {
            // A character longer than the chunk size: take it whole.
            at = rest.chars().next().map_or(rest.len(), char::len_utf8);
        }
        let (head, tail) = rest.split_at(at);
        out.push(head);
        rest = tail;
    }
    out
}

fn main() {
    let args = args();
    let timer = Timer {
        secs: std::env::var("SPEED_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0.5),
    };
    let masker =
        Masker::new(&[&ProfileSpec::builtin_default()], None).expect("builtin profile compiles");
    let naive = Naive::new();
    let bytes = args.mb * MB;
    let clean = corpus::clean(SEED, bytes);
    let dense = corpus::dense(SEED, bytes);
    describe(&clean, &dense);

    let dense_4k = throughput(&timer, &masker, &naive, &clean, &dense);
    streaming(&timer, &masker, &clean, &dense);
    short_clean_values(&timer, &masker);
    let shared = accuracy(&masker, &dense);
    worst_cases(&timer, &masker);

    if let Some(dir) = args.write_corpus {
        let summary = serde_json::json!({
            "dense_4k_mask_text_mb_s": dense_4k.0,
            "dense_4k_find_mb_s": dense_4k.1,
            "shared_4k_precision": shared.true_findings as f64 / shared.findings.max(1) as f64,
            "shared_4k_recall": shared.recalled as f64 / shared.labels.max(1) as f64,
            "dense_bytes": dense.text.len(),
            "dense_labels": dense.labels.len(),
        });
        write_corpus(&dir, &clean, &dense, &summary);
    }
}

fn describe(clean: &Corpus, dense: &Corpus) {
    let mb = |c: &Corpus| c.text.len() as f64 / MB as f64;
    println!(
        "Corpus (seed {SEED:#x}): clean {:.1} MB, {} hard negatives; dense {:.1} MB, {} labels \
         (one sensitive value per {:.0} bytes), {} hard negatives.",
        mb(clean),
        clean.negatives.len(),
        mb(dense),
        dense.labels.len(),
        dense.text.len() as f64 / dense.labels.len().max(1) as f64,
        dense.negatives.len()
    );
    println!();
}

/// The main table; returns the dense 4 KB rates (mask_text, find) for `--write-corpus`.
fn throughput(
    timer: &Timer,
    masker: &Masker,
    naive: &Naive,
    clean: &Corpus,
    dense: &Corpus,
) -> (f64, f64) {
    println!("### Throughput, one thread, default profile");
    println!();
    println!(
        "| corpus | input | mask_text MB/s | mask_text values/s | find MB/s | naive regex MB/s | mask_text ÷ naive |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut dense_4k = (0.0, 0.0);
    for (name, corpus, is_dense) in [("clean", clean, false), ("dense", dense, true)] {
        let short: Vec<String> = corpus::values(SEED, 100_000, 20, is_dense);
        let long: Vec<String> = corpus::values(SEED, 40_000, 100, is_dense);
        let inputs: Vec<(&str, Vec<&str>)> = vec![
            ("20-byte values", short.iter().map(String::as_str).collect()),
            ("100-byte values", long.iter().map(String::as_str).collect()),
            ("1 KB chunks", chunks(&corpus.text, KB)),
            ("4 KB chunks", chunks(&corpus.text, 4 * KB)),
            ("64 KB chunks", chunks(&corpus.text, 64 * KB)),
            ("whole text", vec![corpus.text.as_str()]),
        ];
        for (input, pieces) in &inputs {
            let mut counts = Counts::default();
            let mask = timer.run(pieces, |p| {
                black_box(masker.mask_text(p, &mut counts));
            });
            let find = timer.run(pieces, |p| {
                black_box(masker.find(p));
            });
            let base = timer.run(pieces, |p| {
                black_box(naive.count(p));
            });
            let per_value = if input.contains("values") {
                format!("{:.0}", mask.pieces_per_sec)
            } else {
                "—".to_owned()
            };
            println!(
                "| {name} | {input} | {:.2} | {per_value} | {:.2} | {:.2} | {:.2} |",
                mask.mb(),
                find.mb(),
                base.mb(),
                mask.bytes_per_sec / base.bytes_per_sec
            );
            if is_dense && *input == "4 KB chunks" {
                dense_4k = (mask.mb(), find.mb());
            }
        }
    }
    println!();
    dense_4k
}

fn streaming(timer: &Timer, masker: &Masker, clean: &Corpus, dense: &Corpus) {
    println!("### Streaming masker (`Masker::stream`, `push` chunks then `finish`)");
    println!();
    println!("| corpus | push size | MB/s |");
    println!("|---|---|---|");
    for (name, corpus) in [("clean", clean), ("dense", dense)] {
        for (label, size) in [("1 KB", KB), ("4 KB", 4 * KB), ("64 KB", 64 * KB)] {
            let rate = timer.run(&[corpus.text.as_str()], |text| {
                let mut counts = Counts::default();
                let mut stream = masker.stream();
                for chunk in text.as_bytes().chunks(size) {
                    black_box(stream.push(chunk, &mut counts));
                }
                black_box(stream.finish(&mut counts));
            });
            println!("| {name} | {label} | {:.2} |", rate.mb());
        }
    }
    println!();
}

/// The column hot path: short clean values through `mask_value` with a `Pass` plan.
fn short_clean_values(timer: &Timer, masker: &Masker) {
    let values = corpus::values(SEED, 100_000, 20, false);
    let pieces: Vec<&str> = values.iter().map(String::as_str).collect();
    let mut counts = Counts::default();
    let rate = timer.run(&pieces, |v| {
        black_box(masker.mask_value(&ColumnPlan::Pass, v.as_bytes(), &mut counts));
    });
    println!(
        "Short clean column values (`mask_value`, `ColumnPlan::Pass`, 20 bytes): {:.2} M values/s ({:.1} MB/s).",
        rate.pieces_per_sec / 1e6,
        rate.mb()
    );
    println!();
}

/// Prints the accuracy tables; returns the 4 KB tally over the [`SHARED`] entities.
fn accuracy(masker: &Masker, dense: &Corpus) -> accuracy::Tally {
    let whole_findings = masker.find(&dense.text);
    let whole = accuracy::score(dense, &whole_findings);
    let (kept, chunk_findings, left_out) = accuracy::chunked(masker, dense, 4 * KB);
    let chunked = accuracy::score(&kept, &chunk_findings);
    println!("### Accuracy on the dense corpus (whole text, and masked as 4 KB chunks)");
    println!();
    accuracy::print_table(&whole, &chunked, "4 KB");
    println!();
    println!(
        "A finding is a true positive when it overlaps a label of its entity; exact span: a \
         finding has the label's very range. The 4 KB columns leave out the {left_out} labels \
         and negatives that a chunk boundary cuts or separates from the start of their line \
         (where their key is), and the findings overlapping them."
    );
    println!();
    accuracy::print_negatives(&whole, &chunked, "4 KB");
    println!();
    eprintln!("Accuracy problems on the whole dense text (first 5 of each):");
    accuracy::report_problems(&dense.text, &whole, 5);
    let mut shared = accuracy::Tally::default();
    for entity in SHARED {
        if let Some(t) = chunked.by_entity.get(&entity) {
            shared.add(t);
        }
    }
    shared
}

/// Inputs that stress the recognizers: long candidate runs, many anchors, no structure.
fn worst_cases(timer: &Timer, masker: &Masker) {
    let mut rng = corpus::Rng::new(SEED);
    let random: Vec<u8> = (0..MB).map(|_| rng.next() as u8).collect();
    let hex_dump: String = random[..MB / 4]
        .chunks(16)
        .enumerate()
        .map(|(i, row)| {
            let hex: Vec<String> = row
                .chunks(2)
                .map(|p| format!("{:02x}{:02x}", p[0], p[1]))
                .collect();
            let ascii: String = row
                .iter()
                .map(|&b| {
                    if b.is_ascii_graphic() {
                        char::from(b)
                    } else {
                        '.'
                    }
                })
                .collect();
            format!("{:08x}: {}  {ascii}\n", i * 16, hex.join(" "))
        })
        .collect();
    let inputs: Vec<(&str, String)> = vec![
        ("1 MB of digits", rng.chars(b"0123456789", MB)),
        ("`a@` × 512 Ki", "a@".repeat(MB / 2)),
        (
            "1 MB base64, no spaces",
            rng.chars(
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
                MB,
            ),
        ),
        (
            "1 MB random bytes (lossy UTF-8)",
            String::from_utf8_lossy(&random).into_owned(),
        ),
        ("hex dump (xxd layout)", hex_dump),
        ("`1.` × 512 Ki", "1.".repeat(MB / 2)),
        ("`:` × 1 Mi", ":".repeat(MB)),
    ];
    println!("### Worst-case inputs (`mask_text`, whole input)");
    println!();
    println!("| input | size | MB/s | findings |");
    println!("|---|---|---|---|");
    for (name, text) in &inputs {
        let mut counts = Counts::default();
        let rate = timer.run(&[text.as_str()], |t| {
            black_box(masker.mask_text(t, &mut counts));
        });
        let findings = masker.find(text);
        println!(
            "| {name} | {:.2} MB | {:.2} | {} |",
            text.len() as f64 / MB as f64,
            rate.mb(),
            findings.len()
        );
        for f in findings.iter().take(3) {
            eprintln!(
                "WORST-CASE FINDING in {name}: {} {}",
                f.entity,
                accuracy::show(text, &f.range, 40)
            );
        }
    }
    println!();
}

fn write_corpus(
    dir: &std::path::Path,
    clean: &Corpus,
    dense: &Corpus,
    summary: &serde_json::Value,
) {
    std::fs::create_dir_all(dir).expect("create the corpus directory");
    for (name, corpus) in [("dense", dense), ("clean", clean)] {
        let path = dir.join(format!("{name}.jsonl"));
        let file = std::fs::File::create(&path).expect("create the corpus file");
        let mut out = std::io::BufWriter::new(file);
        for piece in pieces(corpus, 4 * KB) {
            serde_json::to_writer(&mut out, &piece).expect("write the corpus");
            out.write_all(b"\n").expect("write the corpus");
        }
        out.flush().expect("write the corpus");
    }
    std::fs::write(dir.join("speed.json"), summary.to_string()).expect("write speed.json");
    eprintln!(
        "wrote {}/{{dense,clean}}.jsonl and speed.json",
        dir.display()
    );
}

/// The corpus as JSON objects of about `size` bytes, cut at line ends that no label or
/// negative spans, offsets relative to each piece and labels re-decided in its context.
fn pieces(corpus: &Corpus, size: usize) -> Vec<serde_json::Value> {
    let text = &corpus.text;
    let crossed = |at: usize| {
        let l = corpus.labels.partition_point(|l| l.range.end <= at);
        let n = corpus.negatives.partition_point(|n| n.1.end <= at);
        corpus.labels.get(l).is_some_and(|l| l.range.start < at)
            || corpus.negatives.get(n).is_some_and(|n| n.1.start < at)
    };
    let mut out = Vec::new();
    let (mut start, mut label, mut negative) = (0, 0, 0);
    while start < text.len() {
        let mut end = text.len();
        let mut from = start + size;
        while let Some(i) = text
            .as_bytes()
            .get(from..)
            .and_then(|b| b.iter().position(|&c| c == b'\n'))
        {
            from += i + 1;
            if !crossed(from) {
                end = from;
                break;
            }
        }
        let mut labels = Vec::new();
        while let Some(l) = corpus.labels.get(label).filter(|l| l.range.end <= end) {
            labels.push(corpus::Label {
                entity: l.entity,
                range: l.range.start - start..l.range.end - start,
            });
            label += 1;
        }
        corpus::relabel(&text[start..end], &mut labels);
        let labels: Vec<serde_json::Value> = labels
            .iter()
            .map(|l| {
                serde_json::json!({"entity": l.entity.as_str(), "start": l.range.start, "end": l.range.end})
            })
            .collect();
        let mut negatives = Vec::new();
        while let Some((kind, r)) = corpus.negatives.get(negative).filter(|n| n.1.end <= end) {
            negatives.push(
                serde_json::json!({"kind": kind, "start": r.start - start, "end": r.end - start}),
            );
            negative += 1;
        }
        out.push(serde_json::json!({"text": &text[start..end], "labels": labels, "negatives": negatives}));
        start = end;
    }
    out
}
