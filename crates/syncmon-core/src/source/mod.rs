//! The HTTP side of a connection: auth, limits, the retry policy, the circuit breaker and the
//! request log. One `SourceClient` per connection, shared by its entities.
//!
//! `auth` holds how a call proves who it is (API key, bearer, OAuth2 client credentials),
//! `response` how an answer is read (redirects, Trackingid, `Retry-After`, error bodies).

mod auth;
mod response;
#[cfg(test)]
mod tests;
pub mod tls;

pub use response::error_summary;

use crate::clock::Clock;
use crate::config::{AuthKind, ConnectionConfig, ProfileKind, TargetConfig};
use crate::metrics::EngineMetrics;
use crate::retry::classify_status;
pub use crate::retry::{Breaker, Decision, Failure, FailureClass, RetryPolicy, LONGEST_WAIT_IN_CYCLE};
use crate::secrets::{redact_url, Secret};
use crate::store::{RequestRow, Store};
use auth::CachedToken;
use governor::{Quota, RateLimiter};
use reqwest::header::{HeaderMap, HeaderValue};
use response::{describe_reqwest_error, method_after_redirect, read_body, redirect_location, retry_after, rough_duration, tracking_id};
use std::sync::{Arc, Mutex};
// `Instant` only measures how long a call took, for the request log; every time a decision
// depends on is read from the engine's clock.
use std::time::{Duration, Instant};
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
    /// Where the config sets this client up (`connections[0]`, `targets[1]`), for advice that
    /// names the setting to check; None when not known.
    place: Option<String>,
    /// Where each call's duration is counted for Prometheus (the engine's, once it is built).
    metrics: Option<EngineMetrics>,
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
            place: None,
            metrics: None,
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

    /// Counts every call's duration in `metrics` (`syncmon_http_request_duration_seconds`).
    pub fn with_metrics(self, metrics: EngineMetrics) -> Self {
        SourceClient { metrics: Some(metrics), ..self }
    }

    pub fn is_target(&self) -> bool {
        self.target
    }

    /// Names where the config sets this client up (`connections[0]`, `targets[1]`).
    pub fn at(mut self, place: String) -> Self {
        self.place = Some(place);
        self
    }

    /// Which setting holds the URL a failed call went to (`field`: base_url, token_url), for
    /// the advice of a transport error.
    fn reach(&self, field: &str) -> response::Reach {
        let who = if self.target { "target" } else { "connection" };
        let place = self.place.as_ref().map(|p| format!(" ({p}.{field})")).unwrap_or_default();
        response::Reach { setting: format!("the {field} of {who} `{}`{place}", self.cfg.id), timeout: self.cfg.timeout }
    }

    /// Builds an HTTP client for `cfg` (`tls.rs`): TLS always verified against the OS store and
    /// the bundled roots, plus the connection's `ca_file` when it has one.
    pub fn http_client_for(cfg: &ConnectionConfig) -> reqwest::Client {
        tls::http_client(cfg.ca.as_deref())
    }

    /// The client shared by the connections and targets without a `ca_file`.
    pub fn http_client() -> reqwest::Client {
        tls::http_client(None)
    }

    /// One GET, with limits, auth and the request log. Non-2xx answers are failures.
    pub async fn get_once(&self, url: &Url, entity: Option<&str>, attempt: u32) -> Result<Fetched, Failure> {
        self.call_once(&reqwest::Method::GET, url, None, &HeaderMap::new(), entity, attempt).await
    }

    /// One call of any method, with a JSON body for writes (forwarding); see [`Self::get_once`].
    async fn call_once(
        &self,
        method: &reqwest::Method,
        url: &Url,
        body: Option<&bytes::Bytes>,
        extra: &HeaderMap,
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
        for (k, v) in extra {
            headers.insert(k.clone(), v.clone());
        }
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
                    let msg = describe_reqwest_error(&e, Some(&self.reach("base_url")));
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
        let ok = (200..300).contains(&status);
        // A refusal's own words (its `{code, message}`) go into the request log with it: they are
        // what a support engineer quotes back to the vendor with the Trackingid.
        let summary = (!ok).then(|| error_summary(&body));
        let logged_error = read_error.as_ref().map(|(_, e)| e.clone()).or_else(|| summary.clone());
        self.log(url, m, entity, Some(status), started, attempt, Some(body.len()), tid.clone(), logged_error);
        if let Some((class, message)) = read_error {
            return Err(Failure { class, message, http_status: Some(status), tracking_id: tid, retry_after: None });
        }
        let Some(summary) = summary else {
            return Ok(Fetched { status, body, tracking_id: tid, link });
        };
        // "the source answered 503: Service Unavailable", not "503: 503 Service Unavailable".
        let summary = summary.strip_prefix(&status.to_string()).map_or(summary.clone(), |rest| rest.trim_start_matches([':', ' ']).to_string());
        let summary = if summary.is_empty() { "(empty body)".to_string() } else { summary };
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
        on_retry: impl FnMut(u32, &Failure, Duration),
    ) -> Result<(T, Fetched), Failure> {
        self.send_with(method, url, body, &HeaderMap::new(), entity, cancel, parse, on_retry).await
    }

    /// [`Self::send`] with `extra` headers on every try (the delivery's idempotency key).
    #[allow(clippy::too_many_arguments)]
    pub async fn send_with<T>(
        &self,
        method: &reqwest::Method,
        url: &Url,
        body: Option<&bytes::Bytes>,
        extra: &HeaderMap,
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
                r = self.call_once(method, url, body, extra, entity, attempt) => r,
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
        let took = started.elapsed();
        if let Some(m) = &self.metrics {
            m.observe_request(&self.cfg.id, status, took);
        }
        let row = RequestRow {
            id: 0,
            at: self.clock.now_ms(),
            connection: self.cfg.id.clone(),
            entity: entity.map(str::to_string),
            method: method.into(),
            url: redact_url(url),
            status,
            duration_ms: took.as_millis() as i64,
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
