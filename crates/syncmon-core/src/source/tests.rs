use super::*;
use rand::SeedableRng;

fn policy() -> RetryPolicy {
    RetryPolicy { max_retries: 3, max_rate_limited: 5, base: Duration::from_millis(100), cap: Duration::from_secs(1) }
}

#[test]
fn a_wait_longer_than_a_cycle_may_block_ends_the_cycle_instead() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let mut f = Failure::new(FailureClass::RateLimited, "429");
    f.retry_after = Some(LONGEST_WAIT_IN_CYCLE);
    assert!(matches!(policy().decide(&f, 0, 1, &mut rng), Decision::Retry { after, .. } if after == LONGEST_WAIT_IN_CYCLE));
    f.retry_after = Some(Duration::from_secs(365 * 24 * 3600));
    assert_eq!(policy().decide(&f, 0, 1, &mut rng), Decision::WaitOutsideCycle { after: Duration::from_secs(365 * 24 * 3600) });
    assert_eq!(rough_duration(Duration::from_secs(365 * 24 * 3600)), "365 days");
    assert_eq!(rough_duration(Duration::from_secs(2 * 3600)), "2 h");
}

#[test]
fn retry_after_reads_seconds_and_http_dates() {
    let mut h = HeaderMap::new();
    let now = crate::clock::TestClock::fixed(1_445_412_420_000).now_system(); // 2015-10-21 07:27:00 UTC
    h.insert("retry-after", HeaderValue::from_static("7"));
    assert_eq!(retry_after(&h, now), Some(Duration::from_secs(7)));
    h.insert("retry-after", HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"));
    assert_eq!(retry_after(&h, now), Some(Duration::from_secs(60)), "a date is a wait measured on the engine's clock");
    assert_eq!(retry_after(&h, now + Duration::from_secs(3600)), Some(Duration::ZERO), "a date in the past means now");
    let mut h = HeaderMap::new();
    h.insert("x-ratelimit-reset", HeaderValue::from_static("1445412450"));
    assert_eq!(retry_after(&h, now), Some(Duration::from_secs(30)), "a reset timestamp, measured on the engine's clock");
    h.insert("x-ratelimit-reset", HeaderValue::from_static("12"));
    assert_eq!(retry_after(&h, now), Some(Duration::from_secs(12)), "a small reset is seconds to wait");
}

#[test]
fn error_bodies_show_code_and_message() {
    assert_eq!(error_summary(br#"{"code":"resource_not_found","message":"no such entity"}"#), "resource_not_found: no such entity");
    assert_eq!(error_summary(b"<html>\n<h1>502 Bad Gateway</h1></html>"), "<html> <h1>502 Bad Gateway</h1></html>");
    let gateway = b"<html>\r\n<head><TITLE>503 Service\r\n Unavailable</TITLE></head><body><h1>503 Service Unavailable</h1></body></html>";
    assert_eq!(error_summary(gateway), "503 Service Unavailable", "an HTML error page by its title");
}
