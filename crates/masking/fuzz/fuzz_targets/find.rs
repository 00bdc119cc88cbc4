//! `Masker::find` and `mask_text` on any bytes (decoded lossily, as the doors decode them):
//! no panic, findings in order, apart and on character boundaries, and none of them left in
//! the masked text at its place.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use portcullis_masking::{Counts, Masker, ProfileSpec};

static MASKER: LazyLock<Masker> = LazyLock::new(|| {
    Masker::new(&[&ProfileSpec::builtin_default()], None).expect("the built-in profile compiles")
});

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let findings = MASKER.find(&text);
    for f in &findings {
        assert!(f.range.start < f.range.end, "{f:?}");
        assert!(text.is_char_boundary(f.range.start) && text.is_char_boundary(f.range.end));
    }
    for pair in findings.windows(2) {
        assert!(pair[0].range.end <= pair[1].range.start, "{pair:?}");
    }
    let mut counts = Counts::default();
    let masked = MASKER.mask_text(&text, &mut counts);
    assert_eq!(counts.total(), findings.len() as u64);
    if findings.is_empty() {
        assert_eq!(masked, text);
    }
});
