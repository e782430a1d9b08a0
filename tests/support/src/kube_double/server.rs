//! The HTTPS listener: its own thread and current-thread tokio runtime, so the double
//! works the same under `#[test]` and `#[tokio::test]` and never competes with the
//! test's runtime. Sockets get TCP_NODELAY: keep-alive answers would otherwise wait
//! ~40 ms on the client's delayed ACK. An answer a fault knob cuts closes the
//! connection before it is sent, or after half its body ([`Cut`]).

use std::net::TcpListener as StdListener;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::JoinHandle;

use http_body_util::{BodyExt, Limited};
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

use super::http::{ApiRequest, ApiResponse, Cut};
use super::routes;
use super::state::Double;

/// The API server's request body limit (3 MiB).
const MAX_BODY: usize = 3 * 1024 * 1024;

/// The serving thread; dropping it stops the server and waits for the thread.
pub(crate) struct Running {
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

pub(crate) fn spawn(listener: StdListener, tls: Arc<ServerConfig>, double: Arc<Double>) -> Running {
    let (shutdown, stop) = oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("kube-double".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("kube-double runtime");
            runtime.block_on(accept_loop(listener, tls, double, stop));
            // Dropping the runtime cancels the connection tasks still open.
        })
        .expect("kube-double thread");
    Running {
        shutdown: Some(shutdown),
        thread: Some(thread),
    }
}

async fn accept_loop(
    listener: StdListener,
    tls: Arc<ServerConfig>,
    double: Arc<Double>,
    mut stop: oneshot::Receiver<()>,
) {
    listener
        .set_nonblocking(true)
        .expect("non-blocking listener");
    let listener = TcpListener::from_std(listener).expect("tokio listener");
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let (stream, _) = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(_) => continue,
            },
        };
        let _ = stream.set_nodelay(true);
        let (acceptor, double) = (acceptor.clone(), double.clone());
        tokio::spawn(async move {
            let Ok(tls_stream) = acceptor.accept(stream).await else {
                return;
            };
            let service = service_fn(move |req| {
                let double = double.clone();
                async move { serve(&double, req).await }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(tls_stream), service)
                .await;
        });
    }
}

async fn serve(double: &Double, req: Request<Incoming>) -> Result<Response<Answer>, CutShort> {
    let (parts, body) = req.into_parts();
    let answer = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => {
            let req = ApiRequest::new(
                parts.method.as_str(),
                parts.uri.path(),
                parts.uri.query(),
                parts.headers,
                collected.to_bytes().to_vec(),
            );
            routes::respond(double, &req)
        }
        Err(_) => ApiResponse::text(413, "request entity too large\n"),
    };
    if answer.cut == Some(Cut::BeforeAnswer) {
        // A service error makes hyper close the connection without an answer.
        return Err(CutShort);
    }
    let mut response = Response::builder();
    if let Some(secs) = answer.retry_after {
        response = response.header("retry-after", secs.to_string());
    }
    let length = answer.body.len();
    let body = Answer {
        data: Some(Bytes::from(answer.body)),
        cut: answer.cut == Some(Cut::MidBody),
    };
    Ok(response
        .status(answer.status)
        .header("content-type", answer.content_type)
        .header("cache-control", "no-cache, private")
        .header("content-length", length.to_string())
        .body(body)
        .expect("response"))
}

/// The error that closes a connection a knob cut.
#[derive(Debug)]
struct CutShort;

impl std::fmt::Display for CutShort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("answer cut short by a test's fault knob")
    }
}

impl std::error::Error for CutShort {}

/// A whole body in one frame; or, when `cut`, its first half and then an error, which
/// makes hyper close the connection short of the `Content-Length` it announced.
struct Answer {
    data: Option<Bytes>,
    cut: bool,
}

impl Body for Answer {
    type Data = Bytes;
    type Error = CutShort;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, CutShort>>> {
        let this = &mut *self;
        match this.data.take() {
            Some(data) if this.cut => {
                let half = data.slice(..data.len() / 2);
                Poll::Ready(Some(Ok(Frame::data(half))))
            }
            Some(data) => Poll::Ready(Some(Ok(Frame::data(data)))),
            None if this.cut => {
                this.cut = false;
                Poll::Ready(Some(Err(CutShort)))
            }
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && !self.cut
    }

    fn size_hint(&self) -> SizeHint {
        match &self.data {
            Some(data) if !self.cut => SizeHint::with_exact(data.len() as u64),
            _ => SizeHint::default(),
        }
    }
}
