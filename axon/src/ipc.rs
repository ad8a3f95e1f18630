//! The standard messages (A10).
//!
//! Kamaelia's `Axon.Ipc` classes become Rust types here. The shutdown
//! family travels on `control` / `signal` boxes, so it is one enum,
//! [`Control`], whose variants keep Kamaelia's names and its subclassing:
//! `socketShutdown` *is a* `producerFinished`, `serverShutdown` *is a*
//! `shutdownMicroprocess` (see [`Control::is_producer_finished`] and
//! [`Control::is_shutdown_microprocess`]).
//!
//! | Kamaelia                   | Rust                               |
//! |----------------------------|------------------------------------|
//! | `producerFinished`         | [`Control::ProducerFinished`]      |
//! | `shutdownMicroprocess`     | [`Control::ShutdownMicroprocess`]  |
//! | `shutdown`                 | [`Control::Shutdown`]              |
//! | `socketShutdown` (IPC)     | [`Control::SocketShutdown`]        |
//! | `serverShutdown` (IPC)     | [`Control::ServerShutdown`]        |
//! | `notify(caller, payload)`  | [`Notify`]                         |
//! | `status`                   | [`Status`]                         |
//! | `newComponent`             | [`NewComponent`]                   |
//!
//! The socket-level IPC messages (`newCSA`, `shutdownCSA`, `newReader`,
//! `newWriter`, `newExceptional`, `removeReader`, `removeWriter`,
//! `removeExceptional`) carry sockets and Selector requests, so they live in
//! the network crates beside the components that send them.

pub use crate::control::Control;
use crate::handle::Handle;

/// Kamaelia `notify(caller, payload)`: a message to a service, naming who
/// sent it.
#[derive(Clone, Debug)]
pub struct Notify<T> {
    /// The sender, if it wants to be known.
    pub caller: Option<Handle>,
    /// What is being said.
    pub payload: T,
}

/// Kamaelia `status`: a human-readable status report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status(pub String);

/// Kamaelia `newComponent`: components a parent should adopt and activate.
#[derive(Clone, Debug)]
pub struct NewComponent(pub Vec<Handle>);
