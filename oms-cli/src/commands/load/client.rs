//! The HTTP client: one hyper 1 `http1` connection per worker, driven in the
//! worker's own task (no extra task, no channel hop to another thread).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper::header::HeaderValue;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Every request's body type: empty or a shared, pre-built JSON document.
pub(crate) type Body = Full<Bytes>;

/// Error bodies are kept (for their problem+json `code`) up to this size.
const MAX_KEPT_BODY: usize = 1 << 20;

/// Why a request got no response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The TCP connection could not be made.
    Connect,
    /// No full response within `--timeout`.
    Timeout,
    /// The server closed the connection before answering.
    Closed,
    /// Any other I/O or protocol error.
    Io,
}

impl Failure {
    /// Every kind, indexed by [`Failure::index`].
    pub(crate) const ALL: [Self; 4] = [Self::Connect, Self::Timeout, Self::Closed, Self::Io];

    /// Its slot in per-kind arrays.
    pub(crate) const fn index(self) -> usize {
        self as usize
    }

    /// Its name in results.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Timeout => "timeout",
            Self::Closed => "closed",
            Self::Io => "io",
        }
    }

    fn of(err: &hyper::Error) -> Self {
        if err.is_closed() || err.is_canceled() || err.is_incomplete_message() {
            Self::Closed
        } else if err.is_timeout() {
            Self::Timeout
        } else {
            Self::Io
        }
    }
}

/// A response, read to its end.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    /// `X-Response-Time` in microseconds.
    pub(crate) server_us: Option<u64>,
    /// `X-DB-Time` in microseconds.
    pub(crate) db_us: Option<u64>,
    /// The body, when asked for or when the status is an error.
    pub(crate) body: Option<Bytes>,
    /// Body bytes received.
    pub(crate) bytes: u64,
}

type Driver = Connection<TokioIo<TcpStream>, Body>;

/// One keep-alive HTTP/1.1 connection.
pub(crate) struct Conn {
    sender: SendRequest<Body>,
    /// The connection's I/O state machine; `None` once it has ended.
    driver: Option<Pin<Box<Driver>>>,
}

impl Conn {
    /// Opens a connection (TCP_NODELAY) and does the HTTP/1 handshake.
    pub(crate) async fn open(addr: SocketAddr) -> Result<Self, Failure> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|_| Failure::Connect)?;
        // Small requests must leave at once, not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let (sender, driver) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|_| Failure::Connect)?;
        Ok(Self {
            sender,
            driver: Some(Box::pin(driver)),
        })
    }

    /// Whether the connection can carry another request.
    pub(crate) fn is_open(&self) -> bool {
        self.driver.is_some() && !self.sender.is_closed()
    }

    /// Sends `req` and reads the whole response, driving the connection.
    /// A request the connection never sent (it was found closed first)
    /// comes back with the failure, to be retried on a new connection.
    pub(crate) async fn exchange(
        &mut self,
        req: Request<Body>,
        keep_body: bool,
    ) -> Result<Reply, (Failure, Option<Request<Body>>)> {
        let Self { sender, driver } = self;
        let work = async move {
            if let Err(e) = sender.ready().await {
                return Err((Failure::of(&e), Some(req)));
            }
            let resp = match sender.try_send_request(req).await {
                Ok(resp) => resp,
                Err(mut e) => {
                    let unsent = e.take_message();
                    return Err((Failure::of(e.error()), unsent));
                }
            };
            read(resp, keep_body).await.map_err(|f| (f, None))
        };
        drive(driver, work).await
    }
}

/// Polls `work` and, between its polls, the connection it waits on, in the
/// calling task: the connection's wake-ups wake this task directly.
async fn drive<F: Future>(driver: &mut Option<Pin<Box<Driver>>>, work: F) -> F::Output {
    let mut work = pin!(work);
    std::future::poll_fn(move |cx| {
        if let Poll::Ready(out) = work.as_mut().poll(cx) {
            return Poll::Ready(out);
        }
        if let Some(d) = driver.as_mut() {
            if d.as_mut().poll(cx).is_ready() {
                // Closed (by either side) or failed: pending calls now fail.
                *driver = None;
            }
            // The connection may just have handed `work` its response.
            return work.as_mut().poll(cx);
        }
        Poll::Pending
    })
    .await
}

async fn read(resp: Response<Incoming>, keep_body: bool) -> Result<Reply, Failure> {
    let status = resp.status().as_u16();
    let headers = resp.headers();
    let server_us = headers.get("x-response-time").and_then(header_us);
    let db_us = headers.get("x-db-time").and_then(header_us);
    let mut body = resp.into_body();
    if keep_body || status >= 400 {
        let bytes = Limited::new(body, MAX_KEPT_BODY)
            .collect()
            .await
            .map_err(|e| match e.downcast_ref::<hyper::Error>() {
                Some(h) => Failure::of(h),
                None => Failure::Io,
            })?
            .to_bytes();
        Ok(Reply {
            status,
            server_us,
            db_us,
            bytes: bytes.len() as u64,
            body: Some(bytes),
        })
    } else {
        let mut bytes = 0u64;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Failure::of(&e))?;
            if let Some(data) = frame.data_ref() {
                bytes += data.len() as u64;
            }
        }
        Ok(Reply {
            status,
            server_us,
            db_us,
            body: None,
            bytes,
        })
    }
}

/// A timing header (`0.412ms`) in microseconds, without allocating.
pub(crate) fn header_us(value: &HeaderValue) -> Option<u64> {
    parse_ms_us(value.as_bytes())
}

fn parse_ms_us(raw: &[u8]) -> Option<u64> {
    let digits = raw.strip_suffix(b"ms")?;
    let mut whole: u64 = 0;
    let mut frac: u64 = 0;
    let mut frac_digits = 0u32;
    let mut seen_dot = false;
    let mut any = false;
    for &b in digits {
        match b {
            b'0'..=b'9' => {
                any = true;
                let d = u64::from(b - b'0');
                if seen_dot {
                    if frac_digits < 3 {
                        frac = frac * 10 + d;
                        frac_digits += 1;
                    }
                } else {
                    whole = whole.checked_mul(10)?.checked_add(d)?;
                }
            }
            b'.' if !seen_dot => seen_dot = true,
            _ => return None,
        }
    }
    if !any {
        return None;
    }
    while frac_digits < 3 {
        frac *= 10;
        frac_digits += 1;
    }
    whole.checked_mul(1000)?.checked_add(frac)
}

/// Connects if needed, then exchanges one request within `timeout`. A
/// request that a stale keep-alive connection did not send is retried once
/// on a new connection. Any failure drops the connection: the next call
/// opens a new one.
pub(crate) async fn call(
    slot: &mut Option<Conn>,
    addr: SocketAddr,
    req: Request<Body>,
    keep_body: bool,
    timeout: Duration,
) -> Result<Reply, Failure> {
    let result = tokio::time::timeout(timeout, async {
        let mut req = req;
        let mut retried = false;
        loop {
            if !slot.as_ref().is_some_and(Conn::is_open) {
                *slot = None;
                *slot = Some(Conn::open(addr).await?);
            }
            let Some(conn) = slot.as_mut() else {
                return Err(Failure::Connect);
            };
            match conn.exchange(req, keep_body).await {
                Ok(reply) => return Ok(reply),
                Err((_, Some(unsent))) if !retried => {
                    *slot = None;
                    retried = true;
                    req = unsent;
                }
                Err((failure, _)) => return Err(failure),
            }
        }
    })
    .await
    .unwrap_or(Err(Failure::Timeout));
    if result.is_err() {
        *slot = None;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::parse_ms_us;

    #[test]
    fn timing_headers() {
        assert_eq!(parse_ms_us(b"0.412ms"), Some(412));
        assert_eq!(parse_ms_us(b"12.000ms"), Some(12_000));
        assert_eq!(parse_ms_us(b"3ms"), Some(3000));
        assert_eq!(parse_ms_us(b"1.5ms"), Some(1500));
        assert_eq!(parse_ms_us(b"0.0004ms"), Some(0));
        assert_eq!(parse_ms_us(b"0.412"), None);
        assert_eq!(parse_ms_us(b"ms"), None);
        assert_eq!(parse_ms_us(b"1.2.3ms"), None);
        assert_eq!(parse_ms_us(b"-1ms"), None);
    }
}
