//! Reading an answer: where a redirect points, the Trackingid, how long `Retry-After` asks to
//! wait, the error body in a line, the body itself (bounded), and what a transport error was.

use super::MAX_BODY_BYTES;
use crate::retry::FailureClass;
use reqwest::header::HeaderMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use url::Url;

/// "90 s", "45 min", "5 h", "365 days": a wait as people say it (humantime's months of 30.44
/// days make a year read "11months 30days 3h 50m 24s").
pub(super) fn rough_duration(d: Duration) -> String {
    match d.as_secs() {
        s if s < 120 => format!("{s} s"),
        s if s < 2 * 3600 => format!("{} min", s / 60),
        s if s < 2 * 86_400 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

/// Where a redirect answer (301, 302, 303, 307, 308 with a `Location`) points, resolved against
/// the URL that was asked; None for any other answer.
pub(super) fn redirect_location(resp: &reqwest::Response, from: &Url) -> Option<Url> {
    if !matches!(resp.status().as_u16(), 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let location = resp.headers().get(reqwest::header::LOCATION)?.to_str().ok()?;
    from.join(location).ok()
}

/// 303 turns any method into GET, and so do 301/302 for a POST (what every client does);
/// 307 and 308 keep the method and its body.
pub(super) fn method_after_redirect(status: u16, method: &reqwest::Method) -> reqwest::Method {
    match status {
        303 if *method != reqwest::Method::HEAD => reqwest::Method::GET,
        301 | 302 if *method == reqwest::Method::POST => reqwest::Method::GET,
        _ => method.clone(),
    }
}

/// `Trackingid`, read case-insensitively (HeaderMap names are already lowercase).
pub(super) fn tracking_id(h: &HeaderMap) -> Option<String> {
    h.get("trackingid").and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// `Retry-After` in seconds (or an HTTP date), else `X-RateLimit-Reset` as seconds from now;
/// dates are measured from `now`, the engine's clock.
pub(super) fn retry_after(h: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(v) = get("retry-after") {
        if let Ok(secs) = v.parse::<u64>() {
            return Some(Duration::from_secs(secs));
        }
        if let Ok(at) = humantime::parse_rfc3339_weak(v).or_else(|_| httpdate_to_system(v)) {
            return Some(at.duration_since(now).unwrap_or_default());
        }
    }
    get("x-ratelimit-reset").and_then(|v| v.parse::<u64>().ok()).map(|s| {
        // Either seconds to wait or a unix timestamp; a big number is a timestamp.
        let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        Duration::from_secs(if s > 1_000_000_000 { s.saturating_sub(now) } else { s })
    })
}

fn httpdate_to_system(v: &str) -> Result<SystemTime, ()> {
    // "Wed, 21 Oct 2015 07:28:00 GMT" → RFC 3339 for humantime.
    let parts: Vec<&str> = v.split_whitespace().collect();
    if parts.len() != 6 {
        return Err(());
    }
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let m = months.iter().position(|m| *m == parts[2]).ok_or(())? + 1;
    let text = format!("{}-{:02}-{:0>2}T{}Z", parts[3], m, parts[1], parts[4]);
    humantime::parse_rfc3339(&text).map_err(|_| ())
}

/// The API's `{code, message}` error body, or the start of whatever else was sent.
pub fn error_summary(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct ApiError {
        code: Option<String>,
        message: Option<String>,
    }
    if let Ok(e) = serde_json::from_slice::<ApiError>(body) {
        match (e.code, e.message) {
            (Some(c), Some(m)) => return format!("{c}: {m}"),
            (Some(c), None) => return c,
            (None, Some(m)) => return m,
            _ => {}
        }
    }
    let text = String::from_utf8_lossy(body);
    // A gateway's HTML error page says it all in its title ("503 Service Unavailable").
    if let Some(title) = html_title(&text) {
        return title;
    }
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        "(empty body)".into()
    } else if text.chars().count() > 200 {
        format!("{}…", text.chars().take(200).collect::<String>())
    } else {
        text
    }
}

fn html_title(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let start = lower.find("<title>")? + "<title>".len();
    let end = start + lower[start..].find("</title>")?;
    let title = text[start..end].split_whitespace().collect::<Vec<_>>().join(" ");
    (!title.is_empty()).then(|| title.chars().take(200).collect())
}

/// Reads the body as it streams in, up to [`MAX_BODY_BYTES`]: a larger one is refused (a
/// configuration problem, not retried) before it is held in memory whole.
pub(super) async fn read_body(mut resp: reqwest::Response) -> Result<bytes::Bytes, (FailureClass, String)> {
    let mut buf = bytes::BytesMut::with_capacity(resp.content_length().unwrap_or(64 * 1024).min(MAX_BODY_BYTES as u64) as usize);
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if buf.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err((FailureClass::Config, format!("the page is larger than {} MB; lower the entity's page_size", MAX_BODY_BYTES >> 20)));
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(buf.freeze()),
            Err(e) => return Err((FailureClass::Transient, format!("the response was cut off: {}", describe_reqwest_error(&e)))),
        }
    }
}

pub(super) fn describe_reqwest_error(e: &reqwest::Error) -> String {
    use std::error::Error;
    // The origin only (never a path or query, which may carry a key): which host it was is the
    // first thing to check.
    let at = e.url().map(|u| u.origin().ascii_serialization()).filter(|o| o != "null");
    let kind = match (e.is_timeout(), e.is_connect(), &at) {
        (true, _, Some(o)) => format!("{o} timed out"),
        (true, _, None) => "timed out".to_string(),
        (_, true, Some(o)) => format!("cannot connect to {o}"),
        (_, true, None) => "cannot connect".to_string(),
        _ if e.is_body() || e.is_decode() => "the response body broke off".to_string(),
        _ => "the request failed".to_string(),
    };
    let mut cause = String::new();
    let mut src = e.source();
    while let Some(s) = src {
        cause = s.to_string();
        src = s.source();
    }
    if cause.is_empty() {
        kind
    } else if cause.contains("certificate") {
        // Behind an inspecting proxy or with a private CA, this is the message users meet.
        format!(
            "{kind}: {cause} (the server's certificate is not trusted: install its CA in the operating system's certificate \
             store, or name a PEM file with it as the connection's ca_file)"
        )
    } else {
        format!("{kind}: {cause}")
    }
}
