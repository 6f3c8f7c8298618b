//! The Prometheus endpoint of the agent (`syncmon run|serve --metrics ADDR`): `GET /metrics`
//! answers `Syncmon::metrics_text`, nothing else is served.
//!
//! Loopback by default. A token, when given, is required as `Authorization: Bearer <token>`;
//! an address other machines can reach is refused without one. Without a token the `Host`
//! header must name the loopback address and port (a web page cannot read it through DNS
//! rebinding).

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;
use syncmon_core::Syncmon;
use tokio_util::sync::CancellationToken;

/// The path Prometheus scrapes.
pub const PATH: &str = "/metrics";

struct MetricsState {
    sm: Arc<Syncmon>,
    token: Option<String>,
    bound: SocketAddr,
}

/// A running metrics endpoint.
pub struct MetricsServer {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl MetricsServer {
    /// Binds `listen` and serves `GET /metrics` until `stop` is cancelled. A `token` (at least
    /// 16 characters) is then required; without one only a loopback address is accepted.
    pub async fn start(sm: Arc<Syncmon>, listen: SocketAddr, token: Option<String>, stop: CancellationToken) -> std::io::Result<MetricsServer> {
        let invalid = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, m.to_string());
        match &token {
            Some(t) if t.len() < 16 => return Err(invalid("the metrics token must be at least 16 characters long")),
            None if !listen.ip().is_loopback() => return Err(invalid("a metrics address other machines can reach needs a token")),
            _ => {}
        }
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let app = router(sm, token, addr);
        let task = tokio::spawn(async move { axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await });
        Ok(MetricsServer { addr, task })
    }

    /// Waits until the endpoint has stopped.
    pub async fn wait(self) -> std::io::Result<()> {
        self.task.await.map_err(std::io::Error::other)?
    }
}

/// `GET /metrics` over `sm`, checked against `token` or, without one, the `Host` of `bound`.
pub fn router(sm: Arc<Syncmon>, token: Option<String>, bound: SocketAddr) -> Router {
    Router::new().route(PATH, get(metrics)).fallback(not_found).with_state(Arc::new(MetricsState { sm, token, bound }))
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found: the metrics are at /metrics\n").into_response()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    auth.strip_prefix("Bearer ").or_else(|| auth.strip_prefix("bearer ")).map(str::trim)
}

async fn metrics(State(st): State<Arc<MetricsState>>, headers: HeaderMap) -> Response {
    match &st.token {
        Some(token) => {
            if !bearer(&headers).is_some_and(|given| crate::token_matches(given, token)) {
                let mut resp = (StatusCode::UNAUTHORIZED, "unauthorized: send the metrics token as `Authorization: Bearer <token>`\n").into_response();
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return resp;
            }
        }
        None => {
            let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
            if !crate::host_allowed(host, st.bound) {
                return (StatusCode::FORBIDDEN, format!("Host `{host}` is not this endpoint; scrape http://127.0.0.1:{}/metrics\n", st.bound.port()))
                    .into_response();
            }
        }
    }
    let sm = st.sm.clone();
    // The gauges read SQLite: off the async workers.
    match tokio::task::spawn_blocking(move || sm.metrics_text()).await {
        Ok(Ok(text)) => ([(header::CONTENT_TYPE, syncmon_core::metrics::CONTENT_TYPE)], text).into_response(),
        Ok(Err(e)) => {
            tracing::warn!("cannot answer a metrics scrape: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot read the metrics: {e}\n")).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot read the metrics: {e}\n")).into_response(),
    }
}
