//! # Kamaelia.Util: small components that glue pipelines together
//!
//! - [`PureTransformer`]: a function from message to message (or to
//!   nothing), as a component.
//! - [`ConsoleReader`]: lines typed on standard input, out of `outbox`.
//! - [`ConsoleEchoer`]: what arrives in `inbox`, to standard output.
//! - [`Backplane`], [`PublishTo`], [`SubscribeTo`]: a named bus, found
//!   through the CAT, with every subscriber's queue bounded in bytes.
//!
//! Kamaelia's console client, `Pipeline(ConsoleReader(), TCPClient(host,
//! port), ConsoleEchoer())`, is these two around a
//! `tcpclient::TcpClient`.

#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

mod backplane;
mod console;
mod transformer;

pub use backplane::{
    find_backplane, service_name, Backplane, BackplaneOptions, BackplaneStats, PlaneMessage,
    Policy, PublishTo, SubscribeTo, Subscription, Weight, MESSAGE_OVERHEAD, SUBSCRIBER_INBOX,
};
pub use console::{ConsoleEchoer, ConsoleReader};
pub use transformer::PureTransformer;
