//! The tokio echo server we compare with: current-thread runtime, a task
//! per connection, a 64 KiB buffer per task.
//!
//! `--threads N` (for `bench scale`), N > 1: the same tasks on a
//! multi-thread runtime with N workers (work stealing, one listener);
//! `--threads 1`, the default, is the current-thread runtime above.
//!
//! `tokio-echo [--port N] [--threads N]`: prints `listening on HOST:PORT`,
//! serves loopback until killed.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn main() -> std::io::Result<()> {
    let (port, threads) = options().unwrap_or_else(|e| {
        eprintln!("{}: {e}", env!("CARGO_BIN_NAME"));
        std::process::exit(2);
    });
    let rt = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_io()
            .build()?
    };
    rt.block_on(async move {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
        println!("listening on {}", listener.local_addr()?);
        loop {
            let (mut stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
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

/// `--port N` (or `--port=N`; 0, the default, picks a free port) and
/// `--threads N` (at least 1; 1 by default).
fn options() -> Result<(u16, usize), lexopt::Error> {
    use lexopt::prelude::*;
    let (mut port, mut threads) = (0, 1);
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("port") => port = parser.value()?.parse()?,
            Long("threads") => {
                threads = parser.value()?.parse()?;
                if threads == 0 {
                    return Err("--threads must be at least 1".into());
                }
            }
            _ => return Err(arg.unexpected()),
        }
    }
    Ok((port, threads))
}
