//! The tokio-rustls echo server we compare with over TLS: as `tokio-echo`
//! (current-thread runtime, a task per connection, a 64 KiB buffer per
//! task), each connection accepted through `tokio_rustls::TlsAcceptor`
//! with the same server configuration as ours (`tls::server_config_from_pem`:
//! ring, rustls's default session storage).
//!
//! `tokio-tls-echo --cert PATH --key PATH [--port N]`: prints `listening on
//! HOST:PORT`, serves loopback until killed.

use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

fn main() -> std::io::Result<()> {
    let (port, cert, key) = options().unwrap_or_else(|e| {
        eprintln!("{}: {e}", env!("CARGO_BIN_NAME"));
        std::process::exit(2);
    });
    let acceptor = TlsAcceptor::from(tls::server_config_from_pem(&cert, &key)?);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
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
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                let _ = stream.shutdown().await; // close_notify
            });
        }
    })
}

fn options() -> Result<(u16, PathBuf, PathBuf), lexopt::Error> {
    use lexopt::prelude::*;
    let (mut port, mut cert, mut key) = (0, None, None);
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("port") => port = parser.value()?.parse()?,
            Long("cert") | Long("tls-cert") => cert = Some(PathBuf::from(parser.value()?)),
            Long("key") | Long("tls-key") => key = Some(PathBuf::from(parser.value()?)),
            _ => return Err(arg.unexpected()),
        }
    }
    match (cert, key) {
        (Some(c), Some(k)) => Ok((port, c, k)),
        _ => Err("--cert PATH and --key PATH are needed".into()),
    }
}
