#![no_main]
//! Arbitrary headers, bodies and secrets through both webhook dialects' verifiers: no panic, and
//! a signature or clientState that is not the real one never verifies.
use libfuzzer_sys::fuzz_target;
use syncmon_core::webhook::{sign_standard, verify_bc_client_state, verify_standard_signature, TIMESTAMP_TOLERANCE_SECS};

const NOW: i64 = 1_700_000_000;

fuzz_target!(|data: &[u8]| {
    // Fields separated by 0xFF (never part of UTF-8 text): secret, id, timestamp, body, signature header, clientState.
    let mut fields = data.split(|b| *b == 0xFF);
    let mut next = || String::from_utf8_lossy(fields.next().unwrap_or(b"")).into_owned();
    let (secret, id, ts, body, header, client_state) = (next(), next(), next(), next(), next(), next());

    // Anything at all: an answer, never a panic.
    let _ = verify_standard_signature(&secret, &id, &ts, body.as_bytes(), &header, NOW);

    // With a real key: only the real signature verifies.
    let key = format!("whsec_{}", base64_of(secret.as_bytes()));
    let ts_now = NOW.to_string();
    if !id.is_empty() {
        let good = sign_standard(&key, &id, NOW, body.as_bytes());
        assert!(verify_standard_signature(&key, &id, &ts_now, body.as_bytes(), &good, NOW).is_ok(), "the real signature must verify");
        // The fuzzer's header verifies only if it carries the real signature itself.
        if verify_standard_signature(&key, &id, &ts_now, body.as_bytes(), &header, NOW).is_ok() {
            assert!(header.split_ascii_whitespace().any(|t| t == good), "a forged signature verified: {header:?}");
        }
        // The real signature of this message does not verify another body, id, key or a stale time.
        let other_body = format!("{body} ");
        assert!(verify_standard_signature(&key, &id, &ts_now, other_body.as_bytes(), &good, NOW).is_err());
        let other_id = format!("{id}x");
        assert!(verify_standard_signature(&key, &other_id, &ts_now, body.as_bytes(), &good, NOW).is_err());
        let other_key = format!("whsec_{}", base64_of(format!("{secret}!").as_bytes()));
        assert!(verify_standard_signature(&other_key, &id, &ts_now, body.as_bytes(), &good, NOW).is_err());
        let stale = NOW - TIMESTAMP_TOLERANCE_SECS - 1;
        let stale_sig = sign_standard(&key, &id, stale, body.as_bytes());
        assert!(verify_standard_signature(&key, &id, &stale.to_string(), body.as_bytes(), &stale_sig, NOW).is_err());
    }

    // Business Central: the body's entries verify only when each carries exactly the clientState.
    if let Ok(doc) = serde_json::from_str::<serde_json::Value>(&body) {
        if let Some(entries) = doc.get("value").and_then(|v| v.as_array()) {
            let verdict = verify_bc_client_state(entries, &client_state);
            let all_match = entries.iter().all(|e| e.get("clientState").and_then(|c| c.as_str()) == Some(client_state.as_str()));
            assert_eq!(verdict.is_ok(), all_match, "clientState verdict for {body:?}");
        }
    }
});

/// Standard base64 with padding, written out so the target needs no more dependencies.
fn base64_of(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = if bytes.is_empty() { b"k".as_slice() } else { bytes };
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (*b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
