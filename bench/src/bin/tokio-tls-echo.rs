//! The tokio-rustls echo server we compare with on TLS: current-thread
//! runtime, a task per connection (the handshake inside it), a 64 KiB
//! buffer per task, as `tokio-echo`.
//!
//! `tokio-tls-echo [--port N] --tls-cert PATH --tls-key PATH
//! [--provider ring|aws-lc-rs]`: prints `listening on HOST:PORT`, serves
//! loopback until killed.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

#[path = "../tls_contender.rs"]
mod tls_contender;

fn main() -> std::io::Result<()> {
    let opts = tls_contender::options();
    let acceptor = TlsAcceptor::from(tls_contender::server_config(&opts)?);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], opts.port))).await?;
        println!("listening on {}", listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut stream) = acceptor.accept(stream).await else {
                    return;
                };
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => {
                            let _ = stream.shutdown().await;
                            return;
                        }
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    })
}
