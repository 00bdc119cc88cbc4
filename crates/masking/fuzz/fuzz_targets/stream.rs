//! The streaming masker on any bytes cut anywhere: the chunks' output put together is
//! `mask_text` of the whole input (lossily decoded), with the same counts, and the masker never
//! holds more than its bound. The first two bytes choose the chunk sizes.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use portcullis_masking::{Counts, Masker, ProfileSpec, StreamMasker};

static MASKER: LazyLock<Masker> = LazyLock::new(|| {
    Masker::new(&[&ProfileSpec::builtin_default()], None).expect("the built-in profile compiles")
});

fuzz_target!(|data: &[u8]| {
    let (sizes, input) = data.split_at(data.len().min(2));
    let sizes: Vec<usize> = sizes.iter().map(|&s| usize::from(s) * 37 % 4099 + 1).collect();
    let mut whole_counts = Counts::default();
    let whole = MASKER
        .mask_text(&String::from_utf8_lossy(input), &mut whole_counts)
        .into_owned();

    let mut stream: StreamMasker = MASKER.stream();
    let mut counts = Counts::default();
    let mut out = Vec::new();
    let mut at = 0;
    for &size in sizes.iter().cycle() {
        if at >= input.len() {
            break;
        }
        let end = (at + size).min(input.len());
        out.extend(stream.push(&input[at..end], &mut counts));
        assert!(stream.buffered() <= stream.max_buffered());
        at = end;
    }
    out.extend(stream.finish(&mut counts));
    let out = String::from_utf8(out).expect("UTF-8 output");
    // A run longer than the window is masked whole, more than `mask_text` masks it.
    if input.len() <= StreamMasker::DEFAULT_WINDOW {
        assert_eq!(out, whole);
        assert_eq!(counts, whole_counts);
    }
});
