//! The floor under any hyper-based server's cache hit: hyper's HTTP/1.1 server on a multi-thread
//! tokio runtime, with no router and no middleware, answering every request with one file's bytes
//! and the headers a gateway hit carries. `bench/cache_hits.sh` loads it beside nginx and the
//! gateway on the small body: the gateway cannot be cheaper per request than this.
//!
//! Usage: hyper_floor PORT FILE [gzip]   (gzip: the file is gzip, say so in Content-Encoding)

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, VARY};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(port), Some(file)) = (args.next(), args.next()) else {
        eprintln!("usage: hyper_floor PORT FILE");
        std::process::exit(2);
    };
    let gzip = args.next().as_deref() == Some("gzip");
    let body = Bytes::from(std::fs::read(file)?);
    let listener = TcpListener::bind(("127.0.0.1", port.parse().expect("a port number"))).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let body = body.clone();
        tokio::spawn(async move {
            let service = service_fn(move |_: Request<hyper::body::Incoming>| {
                let mut response = Response::builder();
                if gzip {
                    response = response
                        .header(CONTENT_ENCODING, "gzip")
                        .header(VARY, "accept-encoding");
                }
                let response = response
                    .header(CONTENT_TYPE, "application/json")
                    .header(ETAG, "\"0123456789abcdef0123456789abcdef\"")
                    .header(CACHE_CONTROL, "private, max-age=30")
                    .body(Full::new(body.clone()))
                    .expect("static headers are valid");
                async move { Ok::<_, Infallible>(response) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
