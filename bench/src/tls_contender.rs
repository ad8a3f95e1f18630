//! What the TLS echo contenders share (each includes this file with
//! `#[path]`): their options and their rustls server config, built exactly
//! as the tls crate builds its own (`tls::server_config_from_pem`): safe
//! default protocol versions, no client authentication, rustls's default
//! in-memory session cache (so resumed handshakes can be measured).
//!
//! `NAME [--port N] --tls-cert PATH --tls-key PATH [--provider ring|aws-lc-rs]`:
//! the same certificate flags as `selector-demo`, so `compare` starts every
//! TLS contender the same way.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

pub struct Options {
    pub port: u16,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub provider: Arc<CryptoProvider>,
}

/// The options, or exit 2 with a message.
pub fn options() -> Options {
    parse().unwrap_or_else(|e| {
        eprintln!("{}: {e}", std::env::args().next().unwrap_or_default());
        std::process::exit(2);
    })
}

fn parse() -> Result<Options, lexopt::Error> {
    use lexopt::prelude::*;
    let (mut port, mut cert, mut key) = (0, None, None);
    let mut provider = rustls::crypto::ring::default_provider();
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("port") => port = parser.value()?.parse()?,
            Long("tls-cert") => cert = Some(PathBuf::from(parser.value()?)),
            Long("tls-key") => key = Some(PathBuf::from(parser.value()?)),
            Long("provider") => {
                provider = match parser.value()?.string()?.as_str() {
                    "ring" => rustls::crypto::ring::default_provider(),
                    #[cfg(feature = "aws-lc-rs")]
                    "aws-lc-rs" => rustls::crypto::aws_lc_rs::default_provider(),
                    #[cfg(not(feature = "aws-lc-rs"))]
                    "aws-lc-rs" => {
                        return Err("built without aws-lc-rs \
                                    (cargo build --features kamaelia-bench/aws-lc-rs)"
                            .into())
                    }
                    other => return Err(format!("unknown provider {other:?}").into()),
                }
            }
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(Options {
        port,
        cert: cert.ok_or("--tls-cert PATH is required")?,
        key: key.ok_or("--tls-key PATH is required")?,
        provider: Arc::new(provider),
    })
}

/// The server config from the PEM files of `opts`.
pub fn server_config(opts: &Options) -> io::Result<Arc<ServerConfig>> {
    let bad = |e: &dyn std::fmt::Display| io::Error::new(io::ErrorKind::InvalidData, e.to_string());
    let chain = CertificateDer::pem_file_iter(&opts.cert)
        .map_err(|e| bad(&e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(&e))?;
    let key = PrivateKeyDer::from_pem_file(&opts.key).map_err(|e| bad(&e))?;
    let config = ServerConfig::builder_with_provider(opts.provider.clone())
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
        .map_err(|e| bad(&e))?;
    Ok(Arc::new(config))
}
