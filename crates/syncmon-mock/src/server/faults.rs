//! Injected faults: taking them from the queue, the replies they stand for, and connections a
//! handler can reset or cut short.

use super::{error_code, Reply, Shared, TARGET_PREFIX};
use crate::store::Damage;
use crate::{Fault, FaultKind};
use axum::extract::connect_info::Connected;
use axum::http::StatusCode;
use axum::serve::IncomingStream;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

impl Shared {
    /// Takes one use of the first queued fault of the wanted class that matches the entity
    /// (`target:{entity}` for target calls, which only faults aimed at the target match).
    pub(super) fn take_fault(&self, entity: &str, record_level: bool) -> Option<FaultKind> {
        let at_target = entity.starts_with(TARGET_PREFIX);
        let matches = |f: &Fault| match f.entity.as_deref() {
            None => !at_target,
            Some("target:*") => at_target,
            Some(e) => e == entity,
        };
        let mut faults = self.faults.lock().unwrap();
        let pos = faults.iter().position(|(f, _)| !f.kind.is_page_fault() && f.kind.is_record_fault() == record_level && matches(f))?;
        Some(use_once(&mut faults, pos))
    }

    /// Takes one use of the first queued `fail_page` fault for this feed and page number (1 = the
    /// first page of a pass); returns the status it answers.
    pub(super) fn take_page_fault(&self, feed: &str, page: u32) -> Option<u16> {
        let mut faults = self.faults.lock().unwrap();
        let pos = faults
            .iter()
            .position(|(f, _)| matches!(f.kind, FaultKind::FailPage { page: p, .. } if p == page) && f.entity.as_deref().is_none_or(|e| e == feed))?;
        match use_once(&mut faults, pos) {
            FaultKind::FailPage { status, .. } => Some(status),
            _ => None,
        }
    }
}

/// The fault at `pos`, with one use taken (removed when used up; `times: 0` stays).
fn use_once(faults: &mut Vec<(Fault, u32)>, pos: usize) -> FaultKind {
    let kind = faults[pos].0.kind.clone();
    if faults[pos].1 > 0 {
        faults[pos].1 -= 1;
        if faults[pos].1 == 0 {
            faults.remove(pos);
        }
    }
    kind
}

/// What a queued fault answers in place of any route, source or target: `None` when it resets
/// the connection (no reply at all), `Some(Some(reply))` for a 429 or a gateway error, and
/// `Some(None)` when the route answers (its own faults, if any, apply there).
pub(super) fn answered_by_fault(conn: &ConnCtl, fault: Option<&FaultKind>) -> Option<Option<Reply>> {
    match fault {
        Some(FaultKind::Reset) => {
            conn.kill();
            None
        }
        Some(FaultKind::RateLimit { retry_after_secs }) => Some(Some(rate_limited(*retry_after_secs))),
        Some(FaultKind::Status(s)) => Some(Some(gateway_reply(*s))),
        _ => Some(None),
    }
}

/// A page's records as a JSON array with a record fault applied, the same on every feed: the
/// first `records` lose their id or their version (`render` gets the `Damage`), or the first is
/// served twice (`again` renders the copy).
pub(super) fn render_records<R>(
    out: &mut String,
    rows: &[R],
    fault: Option<&FaultKind>,
    mut render: impl FnMut(&mut String, &R, Damage),
    mut again: impl FnMut(&mut String, &R),
) {
    out.push('[');
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let damage = Damage {
            no_id: matches!(fault, Some(FaultKind::MissingId { records }) if i < *records),
            no_version: matches!(fault, Some(FaultKind::MissingRowVersion { records }) if i < *records),
        };
        render(out, row, damage);
        if i == 0 && matches!(fault, Some(FaultKind::DuplicateId)) {
            out.push(',');
            again(out, row);
        }
    }
    out.push(']');
}

pub(super) fn gateway_reply(status: u16) -> Reply {
    let reason = StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Error");
    if status >= 500 {
        Reply {
            status,
            content_type: "text/html",
            headers: Vec::new(),
            body: format!(
                "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n<center><h1>{status} {reason}</h1></center>\r\n<hr><center>gateway</center>\r\n</body>\r\n</html>\r\n"
            ),
        }
    } else {
        let message = match status {
            400 => "The request is invalid (injected fault).".to_string(),
            401 => "Authentication is required (injected fault).".to_string(),
            403 => "The caller may not read this resource (injected fault).".to_string(),
            404 => "The resource does not exist (injected fault).".to_string(),
            _ => format!("{reason} (injected fault)."),
        };
        Reply::error(status, error_code(status), &message)
    }
}

pub(super) fn rate_limited(retry_after_secs: u64) -> Reply {
    let mut r = Reply::error(429, "too_many_requests", "Rate limit exceeded; retry later.");
    r.headers.push(("retry-after", retry_after_secs.to_string()));
    r.headers.push(("x-ratelimit-limit", "100".into()));
    r.headers.push(("x-ratelimit-remaining", "0".into()));
    r.headers.push(("x-ratelimit-reset", retry_after_secs.to_string()));
    r
}

// ---------------------------------------------------------------------------------------------
// Connections a handler can reset

struct ConnState {
    /// Reset: fail every read and write, close with RST.
    kill: AtomicBool,
    /// Truncate: let the next response's head and this many body bytes through, then close.
    truncate_at: AtomicUsize,
}

const NO_TRUNCATION: usize = usize::MAX;

/// Per-connection control, handed to handlers as connect info.
#[derive(Clone)]
pub struct ConnCtl(Arc<ConnState>);

impl ConnCtl {
    pub(super) fn kill(&self) {
        self.0.kill.store(true, Ordering::SeqCst);
    }

    pub(super) fn truncate_body_at(&self, n: usize) {
        self.0.truncate_at.store(n, Ordering::SeqCst);
    }
}

pub struct CtlStream {
    inner: TcpStream,
    st: Arc<ConnState>,
    /// While truncating: body bytes still allowed (None until the end of the head was written).
    body_left: Option<usize>,
    /// After a truncation: every further write fails (a plain close, so the sent bytes arrive).
    cut: bool,
}

impl CtlStream {
    fn check(&self) -> io::Result<()> {
        if self.st.kill.load(Ordering::SeqCst) {
            let _ = self.inner.set_zero_linger();
            return Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset by fault injection"));
        }
        if self.cut {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "truncated by fault injection"));
        }
        Ok(())
    }

    /// A write while truncating: the head passes, then `at` body bytes, then the stream is cut.
    fn poll_write_truncating(&mut self, cx: &mut Context<'_>, buf: &[u8], at: usize) -> Poll<io::Result<usize>> {
        let n = match self.body_left {
            Some(left) => {
                let n = std::task::ready!(Pin::new(&mut self.inner).poll_write(cx, &buf[..left.min(buf.len())]))?;
                self.body_left = Some(left - n);
                n
            }
            None => match buf.windows(4).position(|w| w == b"\r\n\r\n") {
                Some(p) => {
                    let head = p + 4;
                    let n = std::task::ready!(Pin::new(&mut self.inner).poll_write(cx, &buf[..(head + at).min(buf.len())]))?;
                    if n >= head {
                        self.body_left = Some(at - (n - head));
                    }
                    n
                }
                None => std::task::ready!(Pin::new(&mut self.inner).poll_write(cx, buf))?,
            },
        };
        if self.body_left == Some(0) {
            self.cut = true;
            self.st.truncate_at.store(NO_TRUNCATION, Ordering::SeqCst);
        }
        Poll::Ready(Ok(n))
    }
}

impl AsyncRead for CtlStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CtlStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.check()?;
        match self.st.truncate_at.load(Ordering::SeqCst) {
            NO_TRUNCATION => Pin::new(&mut self.inner).poll_write(cx, buf),
            at => self.poll_write_truncating(cx, buf, at),
        }
    }
    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        self.check()?;
        if self.st.truncate_at.load(Ordering::SeqCst) == NO_TRUNCATION {
            return Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        }
        let first = bufs.iter().find(|b| !b.is_empty()).map(|b| &**b).unwrap_or(&[]);
        self.poll_write(cx, first)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

pub struct CtlListener(pub(super) TcpListener);

impl axum::serve::Listener for CtlListener {
    type Io = CtlStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((s, addr)) => {
                    let _ = s.set_nodelay(true);
                    let st = Arc::new(ConnState { kill: AtomicBool::new(false), truncate_at: AtomicUsize::new(NO_TRUNCATION) });
                    return (CtlStream { inner: s, st, body_left: None, cut: false }, addr);
                }
                // Out of file descriptors and the like: wait a little and go on.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

impl Connected<IncomingStream<'_, CtlListener>> for ConnCtl {
    fn connect_info(stream: IncomingStream<'_, CtlListener>) -> Self {
        ConnCtl(stream.io().st.clone())
    }
}
