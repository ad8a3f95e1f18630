//! The shutdown family of messages (A10); see [`ipc`](crate::ipc).

/// The shutdown family of messages, sent to `control` inboxes and out of
/// `signal` outboxes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Control {
    /// Advisory: "I have sent all I will send" (Kamaelia `producerFinished`).
    ProducerFinished,
    /// Demand: "stop now" (Kamaelia `shutdownMicroprocess`).
    ShutdownMicroprocess,
    /// Kamaelia's generic `shutdown`, as sent to a service's control inbox.
    Shutdown,
    /// The socket is gone; a kind of `producerFinished` (Kamaelia.IPC
    /// `socketShutdown`, as a protocol handler receives it).
    SocketShutdown,
    /// Stop the server; a kind of `shutdownMicroprocess` (Kamaelia.IPC
    /// `serverShutdown`).
    ServerShutdown,
}

impl Control {
    /// True for `producerFinished` and its kind `socketShutdown`.
    pub fn is_producer_finished(&self) -> bool {
        matches!(self, Control::ProducerFinished | Control::SocketShutdown)
    }

    /// True for `shutdownMicroprocess` and its kind `serverShutdown`.
    pub fn is_shutdown_microprocess(&self) -> bool {
        matches!(
            self,
            Control::ShutdownMicroprocess | Control::ServerShutdown
        )
    }
}
