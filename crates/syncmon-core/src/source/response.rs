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
            Err(e) => return Err((FailureClass::Transient, format!("the response was cut off: {}", describe_reqwest_error(&e, None)))),
        }
    }
}

/// Where a call was going, for the advice of a transport error: which setting holds the URL
/// ("the base_url of connection `src` (connections[0].base_url)") and the timeouts in force.
pub(super) struct Reach {
    pub setting: String,
    pub timeout: Duration,
}

/// What went wrong below HTTP, read from the error chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Refused,
    Unresolved,
    ConnectTimeout,
    AnswerTimeout,
    Certificate,
    Other,
}

fn classify<'a>(is_timeout: bool, is_connect: bool, chain: impl Iterator<Item = &'a (dyn std::error::Error + 'static)>) -> Transport {
    let mut found = Transport::Other;
    for e in chain {
        let text = e.to_string();
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return Transport::Refused,
                std::io::ErrorKind::TimedOut if is_connect => return Transport::ConnectTimeout,
                _ => {}
            }
        }
        // hyper-util's resolver says "dns error" above getaddrinfo's "failed to lookup address
        // information"; neither type is ours to downcast to.
        if text == "dns error" || text.contains("failed to lookup address") || text.contains("Name or service not known") {
            return Transport::Unresolved;
        }
        if text.contains("certificate") {
            found = Transport::Certificate;
        }
    }
    match found {
        Transport::Other if is_timeout && is_connect => Transport::ConnectTimeout,
        Transport::Other if is_timeout => Transport::AnswerTimeout,
        other => other,
    }
}

/// What to say about proxies for a call to `url`: the variable it goes through, if one is set
/// (never its value: it may carry a password), else where to set one; nothing for this machine.
fn proxy_hint(url: Option<&Url>, env: impl Fn(&str) -> Option<std::ffi::OsString>) -> String {
    let Some(url) = url else { return String::new() };
    let local = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => true,
    };
    if local {
        return String::new();
    }
    let scheme_var = if url.scheme() == "https" { "HTTPS_PROXY" } else { "HTTP_PROXY" };
    let set = [scheme_var.to_string(), scheme_var.to_ascii_lowercase(), "ALL_PROXY".into(), "all_proxy".into()]
        .into_iter()
        .find(|v| env(v).is_some_and(|x| !x.is_empty()));
    match set {
        Some(var) => format!("; the call goes through the proxy {var} names: check it too"),
        None => format!("; behind a proxy, set {scheme_var}"),
    }
}

/// A transport error in a line that names the origin (never a path or query, which may carry a
/// key) and, when `reach` says where the URL is set, what to check.
pub(super) fn describe_reqwest_error(e: &reqwest::Error, reach: Option<&Reach>) -> String {
    use std::error::Error;
    let at = e.url().map(|u| u.origin().ascii_serialization()).filter(|o| o != "null");
    let to = at.as_deref().map(|o| format!(" {o}")).unwrap_or_default();
    let chain = std::iter::successors(e.source(), |&s| s.source());
    let mut cause = String::new();
    for s in chain.clone() {
        cause = s.to_string();
    }
    let class = classify(e.is_timeout(), e.is_connect(), chain);
    let proxy = proxy_hint(e.url(), |v| std::env::var_os(v));
    if let Some(r) = reach {
        let setting = &r.setting;
        match class {
            Transport::Refused => {
                return format!("cannot connect to{to} (connection refused): check that the server is running and that {setting} is right{proxy}")
            }
            Transport::Unresolved => {
                return format!("cannot connect to{to} (the host name does not resolve): check the spelling of {setting} and the network/DNS{proxy}")
            }
            Transport::ConnectTimeout => {
                let within = rough_duration(r.timeout.min(super::tls::CONNECT_TIMEOUT));
                return format!(
                    "cannot connect to{to} within {within} (connection timeout): check the network and any firewall, and that {setting} is right{proxy}"
                );
            }
            Transport::AnswerTimeout => {
                return format!("no answer from{to} within {} (timeout): check the network, or raise the connection's timeout", rough_duration(r.timeout))
            }
            Transport::Certificate | Transport::Other => {}
        }
    }
    let kind = match (e.is_timeout(), e.is_connect(), &at) {
        (true, _, Some(o)) => format!("{o} timed out"),
        (true, _, None) => "timed out".to_string(),
        (_, true, Some(o)) => format!("cannot connect to {o}"),
        (_, true, None) => "cannot connect".to_string(),
        _ if e.is_body() || e.is_decode() => "the response body broke off".to_string(),
        _ => "the request failed".to_string(),
    };
    if cause.is_empty() {
        kind
    } else if class == Transport::Certificate {
        // Behind an inspecting proxy or with a private CA, this is the message users meet.
        format!(
            "{kind}: {cause} (the server's certificate is not trusted: install its CA in the operating system's certificate \
             store, or name a PEM file with it as the connection's ca_file)"
        )
    } else {
        format!("{kind}: {cause}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error of a layer that is not ours, as hyper-util's resolver reports one.
    #[derive(Debug)]
    struct Layer(&'static str, Option<std::io::Error>);
    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_ref().map(|e| e as _)
        }
    }

    fn chain_of<'a>(e: &'a (dyn std::error::Error + 'static)) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
        std::iter::successors(Some(e), |&s| s.source())
    }

    #[test]
    fn transport_errors_are_told_apart_by_their_chain() {
        let dns = Layer("dns error", Some(std::io::Error::other("failed to lookup address information: Name or service not known")));
        assert_eq!(classify(false, true, chain_of(&dns)), Transport::Unresolved);
        let refused = Layer("tcp connect error", Some(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)));
        assert_eq!(classify(false, true, chain_of(&refused)), Transport::Refused);
        let slow = Layer("tcp connect error", Some(std::io::Error::from(std::io::ErrorKind::TimedOut)));
        assert_eq!(classify(true, true, chain_of(&slow)), Transport::ConnectTimeout);
        let quiet = Layer("operation timed out", None);
        assert_eq!(classify(true, false, chain_of(&quiet)), Transport::AnswerTimeout);
        let tls = Layer("invalid peer certificate: UnknownIssuer", None);
        assert_eq!(classify(false, true, chain_of(&tls)), Transport::Certificate);
        let reset = Layer("connection reset", Some(std::io::Error::from(std::io::ErrorKind::ConnectionReset)));
        assert_eq!(classify(false, false, chain_of(&reset)), Transport::Other);
    }

    #[test]
    fn the_proxy_advice_names_the_variable_of_the_scheme_and_never_its_value() {
        let url = |u: &str| Url::parse(u).unwrap();
        let none = |_: &str| None;
        assert_eq!(proxy_hint(Some(&url("https://erp.example.com/api")), none), "; behind a proxy, set HTTPS_PROXY");
        assert_eq!(proxy_hint(Some(&url("http://erp.example.com/api")), none), "; behind a proxy, set HTTP_PROXY");
        let set = |v: &str| (v == "https_proxy").then(|| std::ffi::OsString::from("http://user:pw@proxy:3128"));
        let hint = proxy_hint(Some(&url("https://erp.example.com/api")), set);
        assert_eq!(hint, "; the call goes through the proxy https_proxy names: check it too");
        assert_eq!(proxy_hint(Some(&url("http://127.0.0.1:8380")), set), "", "no proxy advice for this machine");
        assert_eq!(proxy_hint(Some(&url("http://localhost:8380")), none), "");
    }
}
