//! A clean value costs no allocation, whether the gate lets it through at once (letters) or
//! the pattern set has to look (dates, amounts, ids, addresses that are not quite addresses).

use portcullis_masking::{ColumnPlan, Counts, Masked, Masker, ProfileSpec};

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

#[test]
fn clean_values_cost_no_allocation() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let masker = Masker::new(&[&ProfileSpec::builtin_default()], None).expect("masker");
    let values = [
        "Ada Lovelace",
        "2024-03-05 10:30:00",
        "1234.56 EUR",
        "ORD-2024-000123",
        "v1.24.3",
        "6bd0b0ed-a76d-4c3e-a0f4-0fa275789241",
        "status: shipped",
        "id=42",
        "12:30",
        "10.0.0",
        "room 4111 1111",
        "ops@localhost",
        "GB82 list",
    ];
    let mut counts = Counts::default();
    // The first calls fill the per-thread caches.
    for v in values {
        let masked = masker.mask_value(&ColumnPlan::Pass, v.as_bytes(), &mut counts);
        assert!(matches!(masked, Masked::Unchanged(_)), "{v}");
    }
    let allocating: Vec<(&str, u64)> = values
        .iter()
        .map(|v| {
            let before = dhat::HeapStats::get().total_blocks;
            for _ in 0..100 {
                let _ = masker.mask_value(&ColumnPlan::Pass, v.as_bytes(), &mut counts);
            }
            (*v, dhat::HeapStats::get().total_blocks - before)
        })
        .filter(|&(_, n)| n > 0)
        .collect();
    assert!(
        allocating.is_empty(),
        "allocations per 100 calls: {allocating:?}"
    );
}
