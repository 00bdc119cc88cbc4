//! Tampering with the stored chain by raw SQL must make `verify` fail and name the first
//! broken seq. Every test records 25 events one at a time, so checkpoints sit at seqs 10, 20
//! and 25 (the last written at shutdown).

// A test crate: the check functions outside #[test] may unwrap too.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Env, lit, sha256_hex};
use portcullis_audit::{Break, PublicKey, SigningKey, to_canonical, verify};

async fn first_break(env: &Env) -> Break {
    let report = verify(&*env.store, None).await.unwrap();
    assert!(!report.ok, "verify passed a tampered chain");
    report.nodes[0].first_break.clone().unwrap()
}

fn assert_break(b: Break, seq: i64, problem: &str) {
    assert_eq!(b.seq, seq, "{b:?}");
    assert!(b.problem.contains(problem), "{b:?} should say {problem:?}");
}

/// Replaces event `seq`'s body with `body`, optionally recomputing its hash column.
async fn rewrite(env: &Env, seq: i64, body: &str, recompute_hash: bool) {
    let hash = if recompute_hash {
        format!(", hash = {}", lit(&sha256_hex(body)))
    } else {
        String::new()
    };
    let sql = format!(
        "UPDATE audit_events SET body = {}{hash} WHERE seq = {seq}",
        lit(body)
    );
    env.raw.exec(&sql).await;
}

both!(untouched_chain_verifies);
async fn untouched_chain_verifies(env: Env) {
    env.record_run(1, 25).await;
    let key = env.key().public_key();
    for pubkey in [None, Some(&key)] {
        let report = verify(&*env.store, pubkey).await.unwrap();
        assert!(report.ok, "{:?}", report.nodes);
        let node = &report.nodes[0];
        assert_eq!((node.events, node.checkpoints, node.last_seq), (25, 3, 25));
        assert_eq!(node.signed_seq, 25);
    }
}

both!(modified_body_is_a_hash_mismatch);
async fn modified_body_is_a_hash_mismatch(env: Env) {
    env.record_run(1, 25).await;
    let body = env.row(5).await.body.replace("SELECT 5", "SELECT 6");
    rewrite(&env, 5, &body, false).await;
    assert_break(first_break(&env).await, 5, "hash mismatch: event changed");
}

both!(rehashed_body_breaks_the_next_link);
async fn rehashed_body_breaks_the_next_link(env: Env) {
    env.record_run(1, 25).await;
    let body = env.row(5).await.body.replace("allow", "deny");
    rewrite(&env, 5, &body, true).await;
    assert_break(
        first_break(&env).await,
        6,
        "prev_hash does not link to event 5",
    );
}

both!(rehashed_last_event_is_caught_by_its_checkpoint);
async fn rehashed_last_event_is_caught_by_its_checkpoint(env: Env) {
    env.record_run(1, 25).await;
    let body = env.row(25).await.body.replace("allow", "deny");
    rewrite(&env, 25, &body, true).await;
    assert_break(
        first_break(&env).await,
        25,
        "checkpoint at seq 25 signs a different hash",
    );
}

both!(deleted_event_is_a_gap);
async fn deleted_event_is_a_gap(env: Env) {
    env.record_run(1, 25).await;
    env.raw.exec("DELETE FROM audit_events WHERE seq = 7").await;
    assert_break(first_break(&env).await, 7, "gap: event 7 missing");
}

both!(swapped_events_do_not_match_their_rows);
async fn swapped_events_do_not_match_their_rows(env: Env) {
    env.record_run(1, 25).await;
    for sql in [
        "UPDATE audit_events SET seq = -1 WHERE seq = 3",
        "UPDATE audit_events SET seq = 3 WHERE seq = 8",
        "UPDATE audit_events SET seq = 8 WHERE seq = -1",
    ] {
        env.raw.exec(sql).await;
    }
    assert_break(first_break(&env).await, 3, "seq differs");
}

both!(changed_timestamp_column_is_caught);
async fn changed_timestamp_column_is_caught(env: Env) {
    env.record_run(1, 25).await;
    env.raw
        .exec("UPDATE audit_events SET ts_ms = 1 WHERE seq = 4")
        .await;
    assert_break(first_break(&env).await, 4, "ts_ms differs");
}

both!(forged_event_inserted_mid_chain);
async fn forged_event_inserted_mid_chain(env: Env) {
    env.record_run(1, 25).await;
    // Make room after event 12 (in two steps: the primary key is checked row by row).
    env.raw
        .exec("UPDATE audit_events SET seq = seq + 1000 WHERE seq > 12")
        .await;
    env.raw
        .exec("UPDATE audit_events SET seq = seq - 999 WHERE seq > 1000")
        .await;
    // A well-formed forgery that links correctly to event 12.
    let prev = env.row(12).await;
    let forged = to_canonical(&serde_json::json!({
        "v": 1, "node": "test-node", "seq": 13, "ts_ms": prev.ts_ms, "prev": prev.hash,
        "event": {"kind": "decision", "outcome": "allow", "command": "DROP TABLE orders"},
    }));
    let sql = format!(
        "INSERT INTO audit_events (node, seq, ts_ms, kind, body, prev_hash, hash) \
         VALUES ('test-node', 13, {}, 'decision', {}, {}, {})",
        prev.ts_ms,
        lit(&forged),
        lit(&prev.hash),
        lit(&sha256_hex(&forged))
    );
    env.raw.exec(&sql).await;
    // The forgery itself is consistent; the displaced original after it is not.
    assert_break(first_break(&env).await, 14, "seq differs");
}

both!(forged_event_appended_with_a_bad_hash);
async fn forged_event_appended_with_a_bad_hash(env: Env) {
    env.record_run(1, 25).await;
    let last = env.row(25).await;
    let sql = format!(
        "INSERT INTO audit_events (node, seq, ts_ms, kind, body, prev_hash, hash) \
         VALUES ('test-node', 26, {}, 'decision', '{{}}', {}, {})",
        last.ts_ms,
        lit(&last.hash),
        lit(&"ab".repeat(32))
    );
    env.raw.exec(&sql).await;
    assert_break(first_break(&env).await, 26, "hash mismatch");
}

both!(well_forged_tail_is_reported_as_unsigned);
async fn well_forged_tail_is_reported_as_unsigned(env: Env) {
    // A forgery appended after the last checkpoint is indistinguishable from a real event
    // until the next checkpoint; the report shows it is not covered by a signature.
    env.record_run(1, 25).await;
    let last = env.row(25).await;
    let forged = to_canonical(&serde_json::json!({
        "v": 1, "node": "test-node", "seq": 26, "ts_ms": last.ts_ms, "prev": last.hash,
        "event": {"kind": "decision"},
    }));
    let sql = format!(
        "INSERT INTO audit_events (node, seq, ts_ms, kind, body, prev_hash, hash) \
         VALUES ('test-node', 26, {}, 'decision', {}, {}, {})",
        last.ts_ms,
        lit(&forged),
        lit(&last.hash),
        lit(&sha256_hex(&forged))
    );
    env.raw.exec(&sql).await;
    let report = verify(&*env.store, None).await.unwrap();
    let node = &report.nodes[0];
    assert_eq!((node.last_seq, node.signed_seq), (26, 25));
}

both!(truncation_is_caught_by_the_checkpoint);
async fn truncation_is_caught_by_the_checkpoint(env: Env) {
    env.record_run(1, 25).await;
    env.raw
        .exec("DELETE FROM audit_events WHERE seq > 15")
        .await;
    assert_break(
        first_break(&env).await,
        20,
        "checkpoint beyond end of chain",
    );
}

both!(truncate_then_append_is_caught);
async fn truncate_then_append_is_caught(env: Env) {
    env.record_run(1, 25).await;
    // Delete the tail through the checkpoints at 20 and 25, then let a restarted gateway
    // write new events over the same seqs.
    env.raw
        .exec("DELETE FROM audit_events WHERE seq > 15")
        .await;
    let receipts = env.record_run(100, 10).await;
    assert_eq!(receipts[0].seq, 16);
    assert_break(
        first_break(&env).await,
        20,
        "checkpoint at seq 20 signs a different hash",
    );
}

both!(wrong_pubkey_is_rejected);
async fn wrong_pubkey_is_rejected(env: Env) {
    env.record_run(1, 25).await;
    let other = SigningKey::generate().unwrap().public_key();
    let report = verify(&*env.store, Some(&other)).await.unwrap();
    assert!(!report.ok);
    assert_break(
        report.nodes[0].first_break.clone().unwrap(),
        10,
        "signature invalid",
    );
}

both!(altered_signature_is_rejected);
async fn altered_signature_is_rejected(env: Env) {
    env.record_run(1, 25).await;
    let bogus = lit(&base64_of(&[7u8; 64]));
    let sql = format!("UPDATE audit_checkpoints SET signature = {bogus} WHERE seq = 20");
    env.raw.exec(&sql).await;
    assert_break(first_break(&env).await, 20, "checkpoint signature invalid");
}

both!(checkpoint_from_another_key_is_rejected);
async fn checkpoint_from_another_key_is_rejected(env: Env) {
    env.record_run(1, 25).await;
    // Re-sign checkpoint 20 with an attacker's key, storing that key beside it: each
    // signature is valid on its own, but the node's checkpoints no longer share one key.
    let attacker = SigningKey::generate().unwrap().public_key();
    let sql = format!(
        "UPDATE audit_checkpoints SET public_key = {} WHERE seq = 20",
        lit(&attacker.to_string())
    );
    env.raw.exec(&sql).await;
    assert_break(first_break(&env).await, 20, "different key");
    assert!(PublicKey::parse(&attacker.to_string()).is_ok());
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
