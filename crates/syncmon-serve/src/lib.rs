//! `syncmon serve`: the web UI and its HTTP API over the engine's façade (docs/api.md, DESIGN §9).
//!
//! - `POST /api/rpc` runs one `api::Request`; `GET /api/events` streams engine events as
//!   server-sent events; `GET /api/status` answers the entities' status for scripts.
//! - Every `/api/` request needs the token: `Authorization: Bearer <token>`, or the
//!   `syncmon_token` cookie that opening `/?token=<token>` sets. The UI's static files need none
//!   (they hold no data).
//! - Requests whose `Host` is not the bound loopback address (or `localhost`) with its port are
//!   refused (DNS rebinding), as is any request with a foreign `Origin`. No CORS headers, ever.
//!
//! Handlers are one-liners over `syncmon_core::api`; nothing here knows what a method does.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use futures::{Stream, StreamExt};
use serde_json::json;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use subtle::ConstantTimeEq;
use syncmon_core::api::{self, ApiError};
use syncmon_core::{ErrorCode, Syncmon};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;

pub mod metrics;

pub const TOKEN_COOKIE: &str = "syncmon_token";
const KEEPALIVE: Duration = Duration::from_secs(15);
const CSP: &str = "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'";

#[derive(Clone)]
pub struct ServeOptions {
    /// The secret every API request must present.
    pub token: String,
    /// The built UI (`ui/dist`): `index.html` and its assets.
    pub ui_dir: PathBuf,
    /// The address the listener is bound to; `Host` headers are checked against its port.
    pub bound_addr: SocketAddr,
}

struct AppState {
    sm: Arc<Syncmon>,
    opts: ServeOptions,
    /// Ends the event streams on shutdown (graceful shutdown waits for open connections).
    stop: CancellationToken,
}

/// The whole HTTP surface.
pub fn router(sm: Arc<Syncmon>, opts: ServeOptions) -> Router {
    router_with_shutdown(sm, opts, CancellationToken::new())
}

/// Like [`router`]; cancelling `stop` ends the open event streams.
pub fn router_with_shutdown(sm: Arc<Syncmon>, opts: ServeOptions, stop: CancellationToken) -> Router {
    let state = Arc::new(AppState { sm, opts, stop });
    Router::new()
        .route("/api/rpc", post(rpc))
        .route("/api/events", get(events))
        .route("/api/status", get(status))
        .route("/api/failed/export", get(failed_export))
        .route("/api/diagnostics", get(diagnostics_download))
        .route("/api", any(api_not_found))
        .route("/api/{*rest}", any(api_not_found))
        .fallback(static_files)
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Binds `listen` and serves until `stop` is cancelled.
    pub async fn start(sm: Arc<Syncmon>, listen: SocketAddr, token: String, ui_dir: PathBuf, stop: CancellationToken) -> std::io::Result<Server> {
        if token.len() < 16 {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "the token must be at least 16 characters long"));
        }
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let app = router_with_shutdown(sm, ServeOptions { token, ui_dir, bound_addr: addr }, stop.clone());
        let task = tokio::spawn(async move { axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await });
        Ok(Server { addr, task })
    }

    /// Waits until the server has stopped.
    pub async fn wait(self) -> std::io::Result<()> {
        self.task.await.map_err(std::io::Error::other)?
    }
}

fn is_api(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

/// Loopback names with the bound port; the bound address itself; and with `--allow-remote` on all
/// interfaces, any IP literal with the port. Never another host name: that is what DNS rebinding
/// would send.
pub(crate) fn host_allowed(host: &str, bound: SocketAddr) -> bool {
    let port = bound.port();
    let host = host.to_ascii_lowercase();
    if [format!("127.0.0.1:{port}"), format!("localhost:{port}"), format!("[::1]:{port}"), bound.to_string()].contains(&host) {
        return true;
    }
    bound.ip().is_unspecified() && host.parse::<SocketAddr>().is_ok_and(|a| a.port() == port)
}

pub(crate) fn token_matches(given: &str, token: &str) -> bool {
    given.as_bytes().ct_eq(token.as_bytes()).into()
}

fn presented_token(headers: &HeaderMap) -> Option<String> {
    if let Some(auth) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        if let Some(t) = auth.strip_prefix("Bearer ").or_else(|| auth.strip_prefix("bearer ")) {
            return Some(t.trim().to_string());
        }
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(TOKEN_COOKIE).and_then(|rest| rest.strip_prefix('=')).map(str::to_string))
}

fn query_token(query: Option<&str>) -> Option<&str> {
    query?.split('&').find_map(|kv| kv.strip_prefix("token="))
}

/// Host, Origin and token checks for every request, and the security headers on every answer.
async fn guard(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    if !host_allowed(&host, st.opts.bound_addr) {
        return with_headers(refuse(
            StatusCode::FORBIDDEN,
            &format!("Host `{host}` is not this server. Open http://127.0.0.1:{}/ (the address `syncmon serve` printed).", st.opts.bound_addr.port()),
        ));
    }
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let same = origin.to_str().is_ok_and(|o| o.eq_ignore_ascii_case(&format!("http://{host}")));
        if !same {
            return with_headers(refuse(StatusCode::FORBIDDEN, "cross-origin requests are refused"));
        }
    }
    let path = req.uri().path().to_string();
    if path == "/" && req.method() == Method::GET {
        if let Some(t) = query_token(req.uri().query()) {
            // The cookie flow: a link with the token sets it as an HttpOnly cookie and drops it
            // from the address bar (and so from the history).
            if !token_matches(t, &st.opts.token) {
                return with_headers(unauthorized_page());
            }
            let cookie = format!("{TOKEN_COOKIE}={t}; HttpOnly; SameSite=Strict; Path=/");
            let mut resp = Response::builder().status(StatusCode::SEE_OTHER).header(header::LOCATION, "/").body(Body::empty()).expect("static response");
            resp.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).expect("a token is a header value"));
            return with_headers(resp);
        }
    }
    if is_api(&path) {
        let ok = presented_token(req.headers()).is_some_and(|t| token_matches(&t, &st.opts.token));
        if !ok {
            return with_headers(api_error(ApiError::new(
                ErrorCode::Unauthorized,
                "missing or wrong token: send `Authorization: Bearer <token>` (the token is in the URL `syncmon serve` printed; \
                 `syncmon serve --show-token` prints it again)",
            )));
        }
    }
    let mut resp = next.run(req).await;
    if is_api(&path) {
        resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    with_headers(resp)
}

fn with_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    resp
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{message}\n")).into_response()
}

fn html(status: StatusCode, title: &str, body: &str) -> Response {
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body style=\"font-family: sans-serif; max-width: 40em; margin: 3em auto\"><h1>{title}</h1>{body}</body></html>"
    );
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], page).into_response()
}

fn unauthorized_page() -> Response {
    html(
        StatusCode::UNAUTHORIZED,
        "Syncmon: this link's token is not valid",
        "<p>Open the address that <code>syncmon serve</code> printed when it started. To print it again, with the \
         current token, run <code>syncmon serve --show-token</code> on the machine that runs Syncmon.</p>",
    )
}

/// The HTTP status of each error code (docs/api.md lists them). No wildcard: a new code must be
/// given its status here.
fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Usage | ErrorCode::Config | ErrorCode::Credentials => StatusCode::BAD_REQUEST,
        ErrorCode::Damaged | ErrorCode::Storage | ErrorCode::AgentRunning | ErrorCode::Io => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn api_error(e: ApiError) -> Response {
    (status_of(e.code), Json(json!({ "error": e }))).into_response()
}

async fn rpc(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let json_body = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|c| c.starts_with("application/json"));
    if !json_body {
        return api_error(ApiError::usage("send the request as JSON with `Content-Type: application/json`"));
    }
    let value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return api_error(ApiError::usage(format!("the body is not JSON ({e}); send {{\"method\": …, \"params\": {{…}}}}"))),
    };
    let req = match api::parse_request(value) {
        Ok(r) => r,
        Err(e) => return api_error(e),
    };
    let method = req.method();
    let sm = st.sm.clone();
    // Spawned: closing the browser tab must not cancel a resync or a bulk replay halfway.
    match tokio::spawn(async move { api::call(&sm, req).await }).await {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(e)) => api_error(e),
        Err(e) => api_error(ApiError::new(ErrorCode::Io, format!("the `{method}` call failed inside the engine: {e}; see the log"))),
    }
}

/// The JSON messages of the event stream: each engine event, and `resync_needed` after a gap.
fn messages(rx: broadcast::Receiver<syncmon_core::Event>) -> impl Stream<Item = String> {
    futures::stream::unfold(rx, |mut rx| async move {
        let message = match rx.recv().await {
            Ok(e) => serde_json::to_string(&e).unwrap_or_default(),
            // Events were dropped for this slow client; telling it beats a silent gap.
            Err(RecvError::Lagged(_)) => serde_json::to_string(&api::StreamNotice::ResyncNeeded).unwrap_or_default(),
            Err(RecvError::Closed) => return None,
        };
        Some((message, rx))
    })
}

async fn events(State(st): State<Arc<AppState>>) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let live = messages(st.sm.subscribe()).map(|m| Ok(SseEvent::default().data(m)));
    // A first comment so the client knows the subscription is live before any event happens.
    let hello = futures::stream::once(async { Ok(SseEvent::default().comment("connected")) });
    let stop = st.stop.clone();
    let stream = hello.chain(live).take_until(async move { stop.cancelled_owned().await });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEPALIVE).text("keepalive"))
}

async fn status(State(st): State<Arc<AppState>>) -> Response {
    match st.sm.status() {
        Ok(s) => Json(s).into_response(),
        Err(e) => api_error(e.into()),
    }
}

/// `GET /api/failed/export?format=csv|jsonl&entity=&stage=&kind=&state=&any_state=&text=&rule=`:
/// every failed item matching the filter as a download, streamed as the core writes it (the
/// same `Syncmon::export_failed` as `syncmon failed export`).
async fn failed_export(State(st): State<Arc<AppState>>, axum::extract::Query(q): axum::extract::Query<Vec<(String, String)>>) -> Response {
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
    let format = match get("format").as_deref().map(syncmon_core::ExportFormat::parse) {
        None => syncmon_core::ExportFormat::Csv,
        Some(Some(f)) => f,
        Some(None) => return api_error(ApiError::field(ErrorCode::Usage, "format", "format is csv or jsonl")),
    };
    let mut filter = syncmon_core::FailedFilter {
        entity: get("entity"),
        error_kind: get("kind").or_else(|| get("error_kind")),
        any_state: get("any_state").is_some_and(|v| v == "true" || v == "1"),
        text: get("text"),
        rule: get("rule"),
        ..Default::default()
    };
    if let Some(s) = get("stage") {
        match s.parse() {
            Ok(v) => filter.stage = Some(v),
            Err(e) => return api_error(ApiError::field(ErrorCode::Usage, "stage", format!("{e}"))),
        }
    }
    if let Some(s) = get("state") {
        match s.parse() {
            Ok(v) => filter.state = Some(v),
            Err(e) => return api_error(ApiError::field(ErrorCode::Usage, "state", format!("{e}"))),
        }
    }
    let filter = match api::failed_export_filter(&st.sm, &filter) {
        Ok(f) => f,
        Err(e) => return api_error(e),
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let sm = st.sm.clone();
    tokio::task::spawn_blocking(move || {
        let mut w = std::io::BufWriter::with_capacity(64 * 1024, ChannelWriter(tx.clone()));
        if let Err(e) = sm.export_failed(&filter, format, &mut w) {
            // Headers are gone already: the download ends short, with the reason in the log.
            tracing::warn!("failed-items export stopped: {e}");
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    let body = Body::from_stream(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) }));
    let name = format!("syncmon-failed-items.{}", format.extension());
    Response::builder()
        .header(header::CONTENT_TYPE, format.content_type())
        .header(header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\""))
        .body(body)
        .expect("static headers")
}

/// `GET /api/diagnostics[?include_payloads=true]`: the diagnostics bundle (the same zip as
/// `syncmon diagnostics`) as a download, built in memory; nothing is saved on the server.
async fn diagnostics_download(State(st): State<Arc<AppState>>, axum::extract::Query(q): axum::extract::Query<Vec<(String, String)>>) -> Response {
    let include_payloads = q.iter().any(|(k, v)| k == "include_payloads" && (v == "true" || v == "1"));
    let sm = st.sm.clone();
    let built = tokio::task::spawn_blocking(move || {
        let mut buf = std::io::Cursor::new(Vec::new());
        sm.diagnostics(&mut buf, &syncmon_core::DiagnosticsOptions { include_payloads }).map(|_| (sm.diagnostics_file_name(), buf.into_inner()))
    })
    .await;
    match built {
        Ok(Ok((name, bytes))) => Response::builder()
            .header(header::CONTENT_TYPE, "application/zip")
            .header(header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\""))
            .body(Body::from(bytes))
            .expect("static headers"),
        Ok(Err(e)) => api_error(e.into()),
        Err(e) => api_error(ApiError::new(ErrorCode::Io, format!("the diagnostics bundle failed: {e}"))),
    }
}

/// The export's writer: each flushed buffer goes to the response body (back-pressure through
/// the bounded channel; a closed download ends the export with an error).
struct ChannelWriter(tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>);

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.blocking_send(Ok(Bytes::copy_from_slice(buf))).map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the download was closed"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn api_not_found() -> Response {
    api_error(ApiError::new(ErrorCode::NotFound, "no such API path; the API is POST /api/rpc, GET /api/events and GET /api/status (docs/api.md)"))
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "wasm" => "application/wasm",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The built UI: files from `ui_dir`, `index.html` for client-side routes, and a page saying how to
/// build the UI when it is not there.
async fn static_files(State(st): State<Arc<AppState>>, method: Method, uri: axum::http::Uri) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return refuse(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD are served here");
    }
    let dir = &st.opts.ui_dir;
    let index = dir.join("index.html");
    if !index.is_file() {
        return html(
            StatusCode::SERVICE_UNAVAILABLE,
            "Syncmon: the UI is not built",
            &format!(
                "<p>The web UI was not found in <code>{}</code>. Build it with</p>\
                 <pre>npm --prefix ui ci &amp;&amp; npm --prefix ui run build</pre>\
                 <p>and restart <code>syncmon serve</code>, or point it at a built copy with <code>--ui-dir PATH</code> \
                 (or <code>SYNCMON_UI_DIR</code>). The API under <code>/api/</code> works meanwhile.</p>",
                html_escape(&dir.display().to_string())
            ),
        );
    }
    let rel = uri.path().trim_start_matches('/');
    // No way out of ui_dir, and no dotfiles.
    if rel.split('/').any(|seg| seg == ".." || seg.starts_with('.') || seg.contains('\\')) {
        return refuse(StatusCode::NOT_FOUND, "not found");
    }
    let candidate = if rel.is_empty() { index.clone() } else { dir.join(rel) };
    let file = if candidate.is_file() {
        candidate
    } else if !rel.rsplit('/').next().unwrap_or("").contains('.') {
        index // a client-side route such as /failed or /entity/src/items
    } else {
        return refuse(StatusCode::NOT_FOUND, "not found");
    };
    let bytes = match tokio::fs::read(&file).await {
        Ok(b) => b,
        Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, &format!("cannot read {}: {e}", file.display())),
    };
    // Vite names assets by content hash: they never change. index.html must always be fresh.
    let cache = if rel.starts_with("assets/") { "public, max-age=31536000, immutable" } else { "no-cache" };
    let body = if method == Method::HEAD { Body::empty() } else { Body::from(bytes) };
    Response::builder().header(header::CONTENT_TYPE, content_type(&file)).header(header::CACHE_CONTROL, cache).body(body).expect("static response")
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_loopback_names_with_the_bound_port() {
        let bound: SocketAddr = "127.0.0.1:8384".parse().unwrap();
        for ok in ["127.0.0.1:8384", "localhost:8384", "LOCALHOST:8384", "[::1]:8384"] {
            assert!(host_allowed(ok, bound), "{ok}");
        }
        for bad in ["", "127.0.0.1", "127.0.0.1:8385", "evil.example:8384", "localhost.evil.example:8384", "192.168.1.5:8384"] {
            assert!(!host_allowed(bad, bound), "{bad}");
        }
        let all: SocketAddr = "0.0.0.0:8384".parse().unwrap();
        assert!(host_allowed("192.168.1.5:8384", all));
        assert!(!host_allowed("evil.example:8384", all), "a name could be rebound");
    }

    #[test]
    fn tokens_come_from_bearer_or_the_cookie() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=b; syncmon_token=abc; c=d"));
        assert_eq!(presented_token(&h).as_deref(), Some("abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer xyz"));
        assert_eq!(presented_token(&h).as_deref(), Some("xyz"));
        assert!(token_matches("xyz", "xyz") && !token_matches("xy", "xyz") && !token_matches("xyZ", "xyz"));
        assert_eq!(query_token(Some("a=1&token=t0k")), Some("t0k"));
    }

    #[tokio::test]
    async fn a_client_that_fell_behind_is_told_to_resync() {
        use syncmon_core::{Event, EventKind};
        let (tx, rx) = broadcast::channel(2);
        let mut stream = Box::pin(messages(rx));
        for seq in 1..=5 {
            tx.send(Event { seq, at: 0, kind: EventKind::CircuitClosed { connection: "c".into() } }).unwrap();
        }
        drop(tx);
        assert_eq!(stream.next().await.as_deref(), Some(r#"{"type":"resync_needed"}"#));
        let next: serde_json::Value = serde_json::from_str(&stream.next().await.unwrap()).unwrap();
        assert_eq!((next["seq"].as_u64(), next["type"].as_str()), (Some(4), Some("circuit_closed")));
        assert_eq!(stream.next().await.map(|m| m.contains("\"seq\":5")), Some(true));
        assert_eq!(stream.next().await, None, "the stream ends with the engine");
    }

    /// docs/api.md's table of error codes says what `ErrorCode` and this server say: every code,
    /// with its meaning and the HTTP status it is answered with, and no other code.
    #[test]
    fn docs_list_every_error_code_with_its_meaning_and_http_status() {
        let docs = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/api.md")).unwrap();
        let section = docs.split("\n## Error codes\n").nth(1).expect("docs/api.md has a section `## Error codes`");
        let documented: Vec<Vec<String>> = section
            .split("\n## ")
            .next()
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .map(|row| row.split('|').map(|cell| cell.trim().trim_end_matches('`').to_string()).filter(|cell| !cell.is_empty()).collect())
            .collect();
        let engine: Vec<Vec<String>> =
            ErrorCode::ALL.iter().map(|c| vec![c.as_str().to_string(), c.meaning().to_string(), status_of(*c).as_u16().to_string()]).collect();
        assert_eq!(documented, engine, "docs/api.md's table of error codes: code, meaning (`ErrorCode::meaning`), HTTP status (`status_of`)");
    }
}
