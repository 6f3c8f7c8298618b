//! The HTTP side of a connection: auth, limits, the retry policy, the circuit breaker and the
//! request log. One `SourceClient` per connection, shared by its entities.

use crate::clock::Clock;
use crate::config::{AuthKind, ConnectionConfig, ProfileKind, TargetConfig};
use crate::retry::classify_status;
pub use crate::retry::{Breaker, Decision, Failure, FailureClass, RetryPolicy, LONGEST_WAIT_IN_CYCLE};
use crate::secrets::{self, redact_url, Secret, SecretKind};
use crate::store::{RequestRow, Store};
use governor::{Quota, RateLimiter};
use reqwest::header::{HeaderMap, HeaderValue};
use std::sync::{Arc, Mutex};
// `Instant` only measures how long a call took, for the request log; every time a decision
// depends on is read from the engine's clock.
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use url::Url;

/// Pages larger than this are refused rather than buffered (a misconfigured page size or a
/// runaway server must not exhaust memory). 64 MB is 64 KB a record at the default page size.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Redirects followed for one call, each within the origin the call was made to.
pub const MAX_REDIRECTS: usize = 5;

/// A successful response, body read in full.
#[derive(Debug)]
pub struct Fetched {
    pub status: u16,
    pub body: bytes::Bytes,
    pub tracking_id: Option<String>,
    pub link: Option<String>,
}

struct CachedToken {
    value: Secret,
    /// On the engine's clock, in ms.
    refresh_at_ms: i64,
}

/// The rate limiter spaces calls on its own monotonic clock: it measures intervals between
/// calls, it does not read the time of day.
type DirectLimiter = RateLimiter<governor::state::NotKeyed, governor::state::InMemoryState, governor::clock::DefaultClock>;

pub struct SourceClient {
    pub cfg: ConnectionConfig,
    http: reqwest::Client,
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    limiter: DirectLimiter,
    permits: Semaphore,
    secret: Mutex<Option<Secret>>,
    token: tokio::sync::Mutex<Option<CachedToken>>,
    cache_id: Mutex<Option<String>>,
    pub policy: RetryPolicy,
    pub breaker: Mutex<Breaker>,
    /// A forwarding target rather than a source: errors say "target", and source-only headers
    /// (`x-api-version`, `x-server-cache-id`) are not sent.
    target: bool,
}

impl SourceClient {
    pub fn new(cfg: ConnectionConfig, http: reqwest::Client, store: Arc<Store>, clock: Arc<dyn Clock>) -> Self {
        let period = Duration::from_secs_f64(1.0 / cfg.requests_per_second);
        let burst = std::num::NonZeroU32::new(cfg.max_concurrency as u32).unwrap_or(std::num::NonZeroU32::MIN);
        let quota = Quota::with_period(period.max(Duration::from_nanos(1))).expect("period > 0").allow_burst(burst);
        SourceClient {
            limiter: RateLimiter::direct(quota),
            permits: Semaphore::new(cfg.max_concurrency),
            policy: RetryPolicy::from_config(&cfg),
            breaker: Mutex::new(Breaker::new(cfg.breaker_threshold, cfg.breaker_cooldown)),
            secret: Mutex::new(None),
            token: tokio::sync::Mutex::new(None),
            cache_id: Mutex::new(None),
            target: false,
            cfg,
            http,
            store,
            clock,
        }
    }

    /// A client for a forwarding target: the same auth, limits, retries, breaker and request log
    /// as a source (the log names the target id as the connection).
    pub fn for_target(cfg: &TargetConfig, http: reqwest::Client, store: Arc<Store>, clock: Arc<dyn Clock>) -> Self {
        SourceClient { target: true, ..Self::new(cfg.as_connection(), http, store, clock) }
    }

    pub fn is_target(&self) -> bool {
        self.target
    }

    /// Builds the shared HTTP client: rustls with the platform's roots, TLS always verified.
    pub fn http_client() -> reqwest::Client {
        reqwest::Client::builder()
            .user_agent(concat!("syncmon/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(60))
            // Redirects are followed by `call_once` and the token request, only within the
            // origin asked: the client's own policy would carry the credentials anywhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a TLS backend is compiled in")
    }

    fn secret(&self) -> Result<Secret, Failure> {
        let mut cached = self.secret.lock().unwrap();
        if let Some(s) = cached.as_ref() {
            return Ok(s.clone());
        }
        let s = secrets::resolve(&self.cfg, SecretKind::Connection).map_err(|e| Failure::new(FailureClass::Auth, e.to_string()))?;
        *cached = Some(s.clone());
        Ok(s)
    }

    async fn auth_headers(&self, headers: &mut HeaderMap, entity: Option<&str>) -> Result<(), Failure> {
        let value = match self.cfg.auth {
            AuthKind::None => return Ok(()),
            AuthKind::ApiKey => {
                let name = reqwest::header::HeaderName::from_bytes(self.cfg.api_key_header.as_bytes())
                    .map_err(|_| Failure::new(FailureClass::Config, format!("api_key_header `{}` is not a header name", self.cfg.api_key_header)))?;
                let mut v = HeaderValue::from_str(self.secret()?.expose())
                    .map_err(|_| Failure::new(FailureClass::Auth, "the stored API key has characters a header cannot carry"))?;
                v.set_sensitive(true);
                headers.insert(name, v);
                return Ok(());
            }
            AuthKind::Bearer => format!("Bearer {}", self.secret()?.expose()),
            AuthKind::Oauth2 => format!("Bearer {}", self.oauth_token(entity).await?.expose()),
        };
        let mut v = HeaderValue::from_str(&value).map_err(|_| Failure::new(FailureClass::Auth, "the credential has characters a header cannot carry"))?;
        v.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, v);
        Ok(())
    }

    /// A cached client-credentials token, fetched when missing or about to expire.
    async fn oauth_token(&self, entity: Option<&str>) -> Result<Secret, Failure> {
        let mut slot = self.token.lock().await;
        if let Some(t) = slot.as_ref().filter(|t| t.refresh_at_ms > self.clock.now_ms()) {
            return Ok(t.value.clone());
        }
        let token_url = self.cfg.token_url.clone().unwrap_or_default();
        let url = Url::parse(&token_url).map_err(|e| Failure::new(FailureClass::Config, format!("token_url is not a URL: {e}")))?;
        let secret = self.secret()?;
        let mut form = vec![
            ("grant_type", "client_credentials".to_string()),
            ("client_id", self.cfg.client_id.clone().unwrap_or_default()),
            ("client_secret", secret.expose().to_string()),
        ];
        if let Some(s) = &self.cfg.scope {
            form.push(("scope", s.clone()));
        }
        // The token request follows redirects itself, like `call_once`: only within token_url's
        // origin, so that the client secret is never posted anywhere else.
        let (mut method, mut url, mut hops) = (reqwest::Method::POST, url, 0);
        let (status, tracking_id, body) = loop {
            let started = Instant::now();
            let mut req = self.http.request(method.clone(), url.clone());
            if method == reqwest::Method::POST {
                req = req.form(&form);
            }
            let resp = match req.timeout(self.cfg.timeout).send().await {
                Ok(resp) => resp,
                Err(e) => {
                    self.log(&url, method.as_str(), entity, None, started, 1, None, None, Some(describe_reqwest_error(&e)));
                    break (None, None, None);
                }
            };
            let status = resp.status().as_u16();
            let tid = tracking_id(resp.headers());
            let Some(next) = redirect_location(&resp, &url) else {
                let body = resp.bytes().await.ok();
                self.log(&url, method.as_str(), entity, Some(status), started, 1, body.as_ref().map(|b| b.len()), tid.clone(), None);
                break (Some(status), tid, body);
            };
            let refused = if next.origin() != url.origin() {
                Some(format!(
                    "the token endpoint redirected {} → {}, another origin; Syncmon does not send the client secret to another origin: set token_url to the URL that issues the tokens",
                    url.origin().ascii_serialization(),
                    next.origin().ascii_serialization()
                ))
            } else if hops == MAX_REDIRECTS {
                Some(format!("the token endpoint redirected more than {MAX_REDIRECTS} times; set token_url to the URL the redirects end at"))
            } else {
                None
            };
            self.log(&url, method.as_str(), entity, Some(status), started, 1, None, tid.clone(), refused.clone());
            if let Some(message) = refused {
                return Err(Failure { class: FailureClass::Config, message, http_status: Some(status), tracking_id: tid, retry_after: None });
            }
            hops += 1;
            method = method_after_redirect(status, &method);
            url = next;
        };
        let fail = |msg: String| Failure { class: FailureClass::Auth, message: msg, http_status: status, tracking_id: tracking_id.clone(), retry_after: None };
        match status {
            Some(200..=299) => {}
            Some(s) if s >= 500 => {
                return Err(Failure { class: FailureClass::Transient, ..fail("the token endpoint is failing".into()) });
            }
            Some(_) => return Err(fail(format!("the token endpoint refused the client credentials: {}", error_summary(body.as_deref().unwrap_or_default())))),
            None => return Err(Failure { class: FailureClass::Transient, ..fail("cannot reach the token endpoint".into()) }),
        }
        #[derive(serde::Deserialize)]
        struct TokenBody {
            access_token: String,
            expires_in: Option<u64>,
        }
        let parsed: TokenBody =
            serde_json::from_slice(body.as_deref().unwrap_or_default()).map_err(|_| fail("the token endpoint answered without an access_token".into()))?;
        let life = Duration::from_secs(parsed.expires_in.unwrap_or(3600));
        // Refresh shortly before expiry: at 90 % of the lifetime, at most a minute early.
        let margin = (life / 10).min(Duration::from_secs(60));
        let token = Secret::new(parsed.access_token);
        *slot = Some(CachedToken { value: token.clone(), refresh_at_ms: self.clock.now_ms() + (life - margin).as_millis() as i64 });
        Ok(token)
    }

    async fn forget_token(&self) {
        *self.token.lock().await = None;
    }

    /// One GET, with limits, auth and the request log. Non-2xx answers are failures.
    pub async fn get_once(&self, url: &Url, entity: Option<&str>, attempt: u32) -> Result<Fetched, Failure> {
        self.call_once(&reqwest::Method::GET, url, None, entity, attempt).await
    }

    /// One call of any method, with a JSON body for writes (forwarding); see [`Self::get_once`].
    async fn call_once(
        &self,
        method: &reqwest::Method,
        url: &Url,
        body: Option<&bytes::Bytes>,
        entity: Option<&str>,
        attempt: u32,
    ) -> Result<Fetched, Failure> {
        let _permit = self.permits.acquire().await.expect("semaphore is never closed");
        self.limiter.until_ready().await;
        let mut headers = HeaderMap::new();
        self.auth_headers(&mut headers, entity).await?;
        if self.cfg.profile == ProfileKind::Rowversion && !self.target {
            if let Some(v) = self.cfg.api_version.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
                headers.insert("x-api-version", v);
            }
            if let Some(v) = self.cache_id.lock().unwrap().as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
                headers.insert("x-server-cache-id", v);
            }
        }
        headers.insert(reqwest::header::ACCEPT, HeaderValue::from_static("application/json"));
        if body.is_some() {
            headers.insert(reqwest::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let (mut method, mut url, mut body) = (method.clone(), url.clone(), body.cloned());
        let mut hops = 0;
        let (resp, started) = loop {
            let mut req = self.http.request(method.clone(), url.clone());
            if let Some(b) = &body {
                req = req.body(b.clone());
            }
            let started = Instant::now();
            let resp = match req.headers(headers.clone()).timeout(self.cfg.timeout).send().await {
                Ok(r) => r,
                Err(e) => {
                    let msg = describe_reqwest_error(&e);
                    self.log(&url, method.as_str(), entity, None, started, attempt, None, None, Some(msg.clone()));
                    return Err(Failure::new(FailureClass::Transient, msg));
                }
            };
            let Some(next) = redirect_location(&resp, &url) else { break (resp, started) };
            // Each hop is a call of its own in the request log, with its own URL and status.
            let status = resp.status().as_u16();
            let tid = tracking_id(resp.headers());
            let refused = if next.origin() != url.origin() {
                let (who, fix) = if self.target { ("target", "set the target's base_url") } else { ("source", "set base_url") };
                Some(format!(
                    "the {who} redirected {} → {}, another origin; Syncmon does not send credentials to another origin: {fix} to the origin that serves the API",
                    url.origin().ascii_serialization(),
                    next.origin().ascii_serialization()
                ))
            } else if hops == MAX_REDIRECTS {
                Some(format!(
                    "the {} redirected more than {MAX_REDIRECTS} times; set the URL the redirects end at in the config",
                    if self.target { "target" } else { "source" }
                ))
            } else {
                None
            };
            self.log(&url, method.as_str(), entity, Some(status), started, attempt, None, tid.clone(), refused.clone());
            if let Some(message) = refused {
                return Err(Failure { class: FailureClass::Config, message, http_status: Some(status), tracking_id: tid, retry_after: None });
            }
            hops += 1;
            let m = method_after_redirect(status, &method);
            if m != method {
                body = None;
                headers.remove(reqwest::header::CONTENT_TYPE);
            }
            method = m;
            url = next;
        };
        let (m, url) = (method.as_str(), &url);
        let status = resp.status().as_u16();
        let tid = tracking_id(resp.headers());
        if let Some(c) = resp.headers().get("x-server-cache-id").and_then(|v| v.to_str().ok()) {
            *self.cache_id.lock().unwrap() = Some(c.to_string());
        }
        let link = resp.headers().get(reqwest::header::LINK).and_then(|v| v.to_str().ok()).map(str::to_string);
        let retry_after = retry_after(resp.headers(), self.clock.now_system());
        if resp.content_length().is_some_and(|l| l as usize > MAX_BODY_BYTES) {
            let msg = format!("the page is larger than {} MB; lower the entity's page_size", MAX_BODY_BYTES >> 20);
            self.log(url, m, entity, Some(status), started, attempt, None, tid.clone(), Some(msg.clone()));
            return Err(Failure { class: FailureClass::Config, message: msg, http_status: Some(status), tracking_id: tid, retry_after: None });
        }
        let body = read_body(resp).await;
        let (body, read_error) = match body {
            Ok(b) => (b, None),
            Err(e) => (bytes::Bytes::new(), Some(e)),
        };
        self.log(url, m, entity, Some(status), started, attempt, Some(body.len()), tid.clone(), read_error.as_ref().map(|(_, e)| e.clone()));
        if let Some((class, message)) = read_error {
            return Err(Failure { class, message, http_status: Some(status), tracking_id: tid, retry_after: None });
        }
        if (200..300).contains(&status) {
            return Ok(Fetched { status, body, tracking_id: tid, link });
        }
        let summary = error_summary(&body);
        if self.target {
            let class = classify_status(status);
            let message = match class {
                FailureClass::RateLimited => format!("rate limited by the target: {summary}"),
                FailureClass::Auth => format!("authentication failed at the target: {summary}"),
                FailureClass::Transient => format!("the target answered {status}: {summary}"),
                _ => format!("the target rejected the {m} ({status}): {summary}"),
            };
            return Err(Failure { class, message, http_status: Some(status), tracking_id: tid, retry_after });
        }
        let class = classify_status(status);
        let message = match (class, status) {
            (FailureClass::RateLimited, _) => format!("rate limited by the source: {summary}"),
            (FailureClass::Auth, _) => format!("authentication failed: {summary}"),
            (FailureClass::Transient, _) => format!("the source answered {status}: {summary}"),
            (_, 400 | 403 | 404) => {
                format!(
                    "the source refused the request ({status}): {summary}. Check the connection's base_url, the entity's path and the credentials' permissions"
                )
            }
            _ => format!("the source answered {status}: {summary}"),
        };
        Err(Failure { class, message, http_status: Some(status), tracking_id: tid, retry_after })
    }

    /// GET and parse with the retry policy: transient failures back off, 429 waits as told, a 401
    /// on OAuth refreshes the token once. `on_retry` hears about each retry before its wait.
    pub async fn fetch<T>(
        &self,
        url: &Url,
        entity: Option<&str>,
        cancel: &CancellationToken,
        parse: impl Fn(&Fetched) -> Result<T, String>,
        on_retry: impl FnMut(u32, &Failure, Duration),
    ) -> Result<(T, Fetched), Failure> {
        self.send(&reqwest::Method::GET, url, None, entity, cancel, parse, on_retry).await
    }

    /// Any method with the same retry policy as [`Self::fetch`]; writes carry a JSON `body`.
    #[allow(clippy::too_many_arguments)]
    pub async fn send<T>(
        &self,
        method: &reqwest::Method,
        url: &Url,
        body: Option<&bytes::Bytes>,
        entity: Option<&str>,
        cancel: &CancellationToken,
        parse: impl Fn(&Fetched) -> Result<T, String>,
        mut on_retry: impl FnMut(u32, &Failure, Duration),
    ) -> Result<(T, Fetched), Failure> {
        let (mut transient, mut limited, mut attempt) = (0u32, 0u32, 0u32);
        let mut refreshed = false;
        loop {
            attempt += 1;
            let result = tokio::select! {
                r = self.call_once(method, url, body, entity, attempt) => r,
                _ = cancel.cancelled() => return Err(Failure::new(FailureClass::Cancelled, "stopped")),
            };
            let failure = match result {
                Ok(f) => match parse(&f) {
                    Ok(t) => return Ok((t, f)),
                    Err(e) => Failure {
                        class: FailureClass::Transient,
                        message: format!("unusable response body: {e}; if it persists, report the Trackingid to the source's owner"),
                        http_status: Some(f.status),
                        tracking_id: f.tracking_id.clone(),
                        retry_after: None,
                    },
                },
                Err(f) => f,
            };
            match failure.class {
                FailureClass::Transient => transient += 1,
                FailureClass::RateLimited => limited += 1,
                FailureClass::Auth if failure.http_status == Some(401) && self.cfg.auth == AuthKind::Oauth2 && !refreshed => {
                    refreshed = true;
                    self.forget_token().await;
                    on_retry(attempt, &failure, Duration::ZERO);
                    continue;
                }
                _ => {}
            }
            let decision = self.policy.decide(&failure, transient, limited, &mut rand::thread_rng());
            match decision {
                Decision::GiveUp => return Err(failure),
                Decision::WaitOutsideCycle { after } => {
                    let who = if self.target { "target" } else { "source" };
                    let wait = rough_duration(after);
                    return Err(Failure {
                        message: format!("{}; the {who} asked to wait {wait} (Retry-After)", failure.message.trim_end_matches('.')),
                        ..failure
                    });
                }
                Decision::Retry { after, .. } => {
                    on_retry(attempt, &failure, after);
                    tokio::select! {
                        _ = tokio::time::sleep(after) => {}
                        _ = cancel.cancelled() => return Err(Failure::new(FailureClass::Cancelled, "stopped")),
                    }
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn log(
        &self,
        url: &Url,
        method: &str,
        entity: Option<&str>,
        status: Option<u16>,
        started: Instant,
        attempt: u32,
        bytes: Option<usize>,
        tracking_id: Option<String>,
        error: Option<String>,
    ) {
        let row = RequestRow {
            id: 0,
            at: self.clock.now_ms(),
            connection: self.cfg.id.clone(),
            entity: entity.map(str::to_string),
            method: method.into(),
            url: redact_url(url),
            status,
            duration_ms: started.elapsed().as_millis() as i64,
            attempt,
            bytes: bytes.map(|b| b as i64),
            tracking_id,
            error,
        };
        if let Err(e) = self.store.log_request(&row) {
            tracing::warn!(error = %e, "could not write the request log");
        }
    }
}

/// "90 s", "45 min", "5 h", "365 days": a wait as people say it (humantime's months of 30.44
/// days make a year read "11months 30days 3h 50m 24s").
fn rough_duration(d: Duration) -> String {
    match d.as_secs() {
        s if s < 120 => format!("{s} s"),
        s if s < 2 * 3600 => format!("{} min", s / 60),
        s if s < 2 * 86_400 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

/// Where a redirect answer (301, 302, 303, 307, 308 with a `Location`) points, resolved against
/// the URL that was asked; None for any other answer.
fn redirect_location(resp: &reqwest::Response, from: &Url) -> Option<Url> {
    if !matches!(resp.status().as_u16(), 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let location = resp.headers().get(reqwest::header::LOCATION)?.to_str().ok()?;
    from.join(location).ok()
}

/// 303 turns any method into GET, and so do 301/302 for a POST (what every client does);
/// 307 and 308 keep the method and its body.
fn method_after_redirect(status: u16, method: &reqwest::Method) -> reqwest::Method {
    match status {
        303 if *method != reqwest::Method::HEAD => reqwest::Method::GET,
        301 | 302 if *method == reqwest::Method::POST => reqwest::Method::GET,
        _ => method.clone(),
    }
}

/// `Trackingid`, read case-insensitively (HeaderMap names are already lowercase).
fn tracking_id(h: &HeaderMap) -> Option<String> {
    h.get("trackingid").and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// `Retry-After` in seconds (or an HTTP date), else `X-RateLimit-Reset` as seconds from now;
/// dates are measured from `now`, the engine's clock.
fn retry_after(h: &HeaderMap, now: SystemTime) -> Option<Duration> {
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
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        "(empty body)".into()
    } else if text.chars().count() > 200 {
        format!("{}…", text.chars().take(200).collect::<String>())
    } else {
        text
    }
}

/// Reads the body as it streams in, up to [`MAX_BODY_BYTES`]: a larger one is refused (a
/// configuration problem, not retried) before it is held in memory whole.
async fn read_body(mut resp: reqwest::Response) -> Result<bytes::Bytes, (FailureClass, String)> {
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

fn describe_reqwest_error(e: &reqwest::Error) -> String {
    use std::error::Error;
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "the response body broke off"
    } else {
        "the request failed"
    };
    let mut cause = String::new();
    let mut src = e.source();
    while let Some(s) = src {
        cause = s.to_string();
        src = s.source();
    }
    if cause.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {cause}")
    }
}

#[cfg(test)]
mod tests {
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
    }
}
