//! The HTTPS listener: its own thread and current-thread tokio runtime, so the double
//! works the same under `#[test]` and `#[tokio::test]` and never competes with the
//! test's runtime. Sockets get TCP_NODELAY: keep-alive answers would otherwise wait
//! ~40 ms on the client's delayed ACK.

use std::convert::Infallible;
use std::net::TcpListener as StdListener;
use std::sync::Arc;
use std::thread::JoinHandle;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

use super::http::{ApiRequest, ApiResponse};
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
                async move { Ok::<_, Infallible>(serve(&double, req).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(tls_stream), service)
                .await;
        });
    }
}

async fn serve(double: &Double, req: Request<Incoming>) -> Response<Full<Bytes>> {
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
    let mut response = Response::builder();
    if let Some(secs) = answer.retry_after {
        response = response.header("retry-after", secs.to_string());
    }
    response
        .status(answer.status)
        .header("content-type", answer.content_type)
        .header("cache-control", "no-cache, private")
        .body(Full::new(Bytes::from(answer.body)))
        .expect("response")
}
