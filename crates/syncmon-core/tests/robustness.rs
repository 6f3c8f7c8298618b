//! Hostile input never panics and never yields a wrong answer: thousands of seeded mutations of
//! valid pages and configs go through the real page parser and config loader. (Deeper, open-ended
//! runs of the same inputs: `scripts/fuzz.sh`, with cargo-fuzz.)

use syncmon_core::config::Config;
use syncmon_core::profile::Profile;
use syncmon_core::RowVersion;

/// xorshift64*: deterministic, so a failure reproduces from its round number.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const FRAGMENTS: &[&str] = &[
    "null",
    "true",
    "-1",
    "1e309",
    "\"\"",
    "{}",
    "[]",
    "\"rowVersion\":",
    "\"id\":",
    "\"data\":",
    "99999999999999999999999999999999999999",
    "\"\\u0000\"",
    "\"\\ud800\"",
    ",",
    ":",
    "{",
    "}",
    "[",
    "]",
    "\"morePages\":true",
    "\"nextPageKey\":\"x\"",
    "\"nextPageURL\":\"http://evil.example/\"",
    "0x10",
    "\"-5\"",
    "\"12a\"",
    "1.5",
    "\u{feff}",
    "\u{0}",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
];

fn mutate(rng: &mut Rng, base: &str) -> Vec<u8> {
    let mut b = base.as_bytes().to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(b.len() + 1);
        match rng.below(5) {
            0 => b.truncate(at),
            1 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] = rng.next() as u8;
            }
            2 => {
                let f = FRAGMENTS[rng.below(FRAGMENTS.len())];
                b.splice(at..at, f.bytes());
            }
            3 if at < b.len() => {
                let end = (at + rng.below(40)).min(b.len());
                b.drain(at..end);
            }
            _ => {
                let nest = "[".repeat(rng.below(300));
                b.splice(at..at, nest.bytes());
            }
        }
    }
    b
}

fn profile(conn_extra: &str) -> Profile {
    let text = format!("[[connection]]\nid = \"c\"\nbase_url = \"http://127.0.0.1:9/api\"\n{conn_extra}\n[[connection.entity]]\nname = \"items\"\n");
    let cfg = Config::parse(&text).unwrap();
    Profile::new(&cfg.connections[0], &cfg.connections[0].entities[0]).unwrap()
}

/// Whatever the parser accepts must be coherent: every record has an id and a version, the
/// page's max version is the max of its records and of the rejected records that carry one (the
/// checkpoint moves past bad records), and the next page stays on the source's origin.
fn check_page(p: &Profile, body: &[u8]) {
    let first = p.first_url(&RowVersion::zero());
    let Ok(page) = p.parse_page(body, &first, None) else { return };
    let max = page.records.iter().map(|r| r.version.clone()).chain(page.rejected.iter().filter_map(|r| r.version.clone())).max();
    assert_eq!(page.max_version, max, "max_version must be the records' max for {:?}", String::from_utf8_lossy(body));
    for r in &page.records {
        assert!(!r.id.is_empty());
        assert!(serde_json::from_str::<serde_json::Value>(&r.data).is_ok(), "stored data must be JSON");
    }
    if let Some(next) = &page.next {
        assert_eq!(next.host_str(), Some("127.0.0.1"), "a next page on another host must be refused: {next}");
    }
}

#[test]
fn mutated_reference_pages_are_parsed_or_refused_never_misread() {
    let p = profile("");
    let base = r#"{"morePages":true,"nextPageKey":"k1","nextPageURL":"http://127.0.0.1:9/api/items?pageKey=k1","data":[{"id":"a","rowVersion":"999999","n":{"x":[1,2]}},{"id":"b","rowVersion":"1000000","s":"t\"q"},{"id":"c","rowVersion":"17"}]}"#;
    let mut rng = Rng(0x5eed_0001);
    for _ in 0..20_000 {
        check_page(&p, &mutate(&mut rng, base));
    }
}

#[test]
fn mutated_cursor_pages_are_parsed_or_refused_never_misread() {
    let p = profile(
        "profile = \"cursor\"\n[connection.cursor]\nid_field = \"uid\"\nversion_field = \"seq\"\nrecords_pointer = \"/result/items\"\nfilter_param = \"since\"\nnext_token_pointer = \"/result/next\"\nnext_token_param = \"token\"\n",
    );
    let base = r#"{"result":{"next":"t2","items":[{"uid":"a","seq":5},{"uid":"b","seq":"18446744073709551616"},{"uid":7,"seq":6}]}}"#;
    let mut rng = Rng(0x5eed_0002);
    for _ in 0..20_000 {
        check_page(&p, &mutate(&mut rng, base));
    }
}

#[test]
fn mutated_configs_load_or_fail_with_a_message() {
    let base = "[webhooks]\nlisten = \"127.0.0.1:8385\"\n\n[[connection]]\nid = \"retail\"\nbase_url = \"https://api.example.com/x\"\nauth = \"api_key\"\nrequests_per_second = 10\nlookback = \"10m\"\n\n[[connection.entity]]\nname = \"items\"\npoll_every = \"5m\"\npage_size = 1000\n";
    if let Err(e) = Config::parse(base) {
        panic!("the base config must load: {e}");
    }
    let mut rng = Rng(0x5eed_0003);
    for _ in 0..5_000 {
        let bytes = mutate(&mut rng, base);
        let text = String::from_utf8_lossy(&bytes);
        match Config::parse(&text) {
            Ok(cfg) => {
                for c in &cfg.connections {
                    for e in &c.entities {
                        // An accepted config must build a working profile, not fail later.
                        Profile::new(c, e).unwrap_or_else(|err| panic!("accepted config cannot build a profile ({err}):\n{text}"));
                    }
                }
            }
            Err(problem) => assert!(!problem.message.trim().is_empty(), "an error must say something:\n{text}"),
        }
    }
}

/// The webhook verifier under seeded mutations of a real signed call (both dialects): a mutated
/// id, timestamp, body, key or signature header never verifies unless the header still carries
/// the real signature for exactly this message; a Business Central body verifies only when every
/// entry carries exactly the clientState. Never a panic. (Open-ended: the `webhook_verifier`
/// fuzz target.)
#[test]
fn mutated_webhook_calls_never_verify_unless_genuine() {
    use syncmon_core::webhook::{sign_standard, verify_bc_client_state, verify_standard_signature};
    const NOW: i64 = 1_700_000_000;
    let key = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let (id, ts, body) = ("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", NOW.to_string(), r#"{"entity":"items","type":"changed"}"#);
    let good = sign_standard(key, id, NOW, body.as_bytes());
    assert!(verify_standard_signature(key, id, &ts, body.as_bytes(), &good, NOW).is_ok());
    // Genuinely signed, but outside the clock tolerance: refused either way.
    for skew in [-301, 301, -1_000_000_000, i64::MAX / 2] {
        let at = NOW.saturating_add(skew);
        let sig = sign_standard(key, id, at, body.as_bytes());
        assert!(verify_standard_signature(key, id, &at.to_string(), body.as_bytes(), &sig, NOW).is_err(), "skew {skew}");
    }
    let mut rng = Rng(0x5eed_0004);
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    let mut verified = 0;
    for round in 0..20_000 {
        let (mut k, mut i, mut t, mut b, mut h) = (key.to_string(), id.to_string(), ts.clone(), body.to_string(), good.clone());
        match rng.below(6) {
            0 => k = text(mutate(&mut rng, key)),
            1 => i = text(mutate(&mut rng, id)),
            2 => t = text(mutate(&mut rng, &ts)),
            3 => b = text(mutate(&mut rng, body)),
            4 => h = text(mutate(&mut rng, &good)),
            _ => h = format!("v1,{} {}", text(mutate(&mut rng, "AAAA")), text(mutate(&mut rng, &good))),
        }
        let genuine = i == id && t == ts && b == body && h.split_ascii_whitespace().any(|s| s == good);
        // A key that decodes to the same bytes (e.g. without the prefix) is the same key.
        let same_key = k == key || k.trim().strip_prefix("whsec_").unwrap_or(k.trim()) == key.strip_prefix("whsec_").unwrap();
        let ok = verify_standard_signature(&k, &i, &t, b.as_bytes(), &h, NOW).is_ok();
        if ok {
            verified += 1;
        }
        assert_eq!(ok, genuine && same_key, "round {round}: key {k:?} id {i:?} ts {t:?} body {b:?} header {h:?}");
    }
    assert!(verified > 20, "some mutations must leave the call genuine ({verified})");

    let state = "s3cret-client-state";
    let bc = format!(
        r#"{{"value":[{{"clientState":"{state}","resource":"api/v2.0/companies(1)/items(2)","changeType":"updated"}},{{"clientState":"{state}","resource":"items","changeType":"collection"}}]}}"#
    );
    let mut accepted = 0;
    for round in 0..20_000 {
        let mutated = text(mutate(&mut rng, &bc));
        let Ok(doc) = serde_json::from_str::<serde_json::Value>(&mutated) else { continue };
        let Some(entries) = doc.get("value").and_then(|v| v.as_array()) else { continue };
        let all_match = entries.iter().all(|e| e.get("clientState").and_then(|c| c.as_str()) == Some(state));
        let ok = verify_bc_client_state(entries, state).is_ok();
        accepted += ok as usize;
        assert_eq!(ok, all_match, "round {round}: {mutated}");
    }
    assert!(accepted > 10, "some mutations must keep the notification genuine ({accepted})");
}
