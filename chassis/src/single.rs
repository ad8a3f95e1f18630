//! [`SingleServer`]: Kamaelia's `Kamaelia.Internet.SingleServer`, one
//! connection at a time whose data is the component's own boxes.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axon::{boxes, Component, Control, Cx, Handle, Inbox, Outbox, Postbox, Step};

use crate::{BindError, ServerCore, ServerOptions};

/// What a connection's bridge tells its [`SingleServer`].
#[derive(Debug)]
pub enum BridgeEvent {
    /// A client is connected: send its data here, and stop it here.
    Joined {
        /// Into the bridge's `_toClient` inbox: bytes for the client.
        to_client: Postbox<Vec<u8>>,
        /// Into the bridge's `control`.
        control: Postbox<Control>,
    },
    /// The client has gone.
    Left,
}

/// Where bridges find their server's boxes (set when it is created).
type Ends = Arc<OnceLock<(Postbox<Vec<u8>>, Postbox<BridgeEvent>)>>;

boxes! {
    /// A [`SingleServer`]'s boxes (see its docs).
    pub struct SingleServerBoxes {
        /// bytes for the connected client
        pub inbox: Inbox<Vec<u8>>,
        /// producerFinished: finish the connection and stop; shutdownMicroprocess: stop now
        pub control: Inbox<Control>,
        /// bytes from the connected client
        pub outbox: Outbox<Vec<u8>>,
        /// producerFinished each time a connection closes
        pub signal: Outbox<Control>,
        /// bytes from the client, from its bridge
        #[name = "_fromClient"]
        pub from_client: Inbox<Vec<u8>>,
        /// connections coming and going
        #[name = "_bridge"]
        pub bridge: Inbox<BridgeEvent>,
    }
}

/// Kamaelia's `SingleServer(port)`: a server for one connection at a
/// time. What the client sends comes out of `outbox`; what arrives in
/// `inbox` is sent to the client; when the connection closes,
/// `producerFinished` goes out of `signal`.
///
/// Better than Kamaelia, which accepted a second client and shut it down
/// at once: a second client waits in the listen backlog (T8, one
/// connection at most) and is served when the first has gone. Bytes that
/// arrive in `inbox` while no client is connected wait there for the next
/// one (the inbox is bounded: the sender is held, A5).
///
/// ## Boxes
///
/// | box | direction | carries | meaning |
/// |---|---|---|---|
/// | `inbox` | inbox | `Vec<u8>` | bytes for the client |
/// | `control` | inbox | [`Control`] | `producerFinished`: write what is queued, close, stop listening, end; `shutdownMicroprocess`: close now and end |
/// | `outbox` | outbox | `Vec<u8>` | bytes from the client |
/// | `signal` | outbox | [`Control`] | `producerFinished` when a connection has closed |
/// | `_fromClient` | inbox | `Vec<u8>` | internal: from the connection's bridge |
/// | `_bridge` | inbox | [`BridgeEvent`] | internal: connections coming and going |
///
/// ```
/// use axon::{link, Endpoint, Standard};
/// use chassis::SingleServer;
/// use std::io::{Read, Write};
/// use std::time::Duration;
///
/// let server = SingleServer::new("127.0.0.1:0".parse().unwrap()).unwrap();
/// let addr = server.local_addr();
/// let scheduler = selector::scheduler().unwrap();
/// let single = scheduler.activate(server).unwrap();
/// let me = Endpoint::<Standard<Vec<u8>, Vec<u8>>>::new("me");
/// link((&single, "outbox"), (me.handle(), "inbox")).unwrap();
/// link((me.handle(), "outbox"), (&single, "inbox")).unwrap();
/// let stop = scheduler.handle();
/// let running = std::thread::spawn(move || scheduler.run());
///
/// let mut client = std::net::TcpStream::connect(addr).unwrap();
/// client.write_all(b"hello").unwrap();
/// assert_eq!(me.inbox.recv_timeout(Duration::from_secs(10)), Some(b"hello".to_vec()));
/// me.outbox.send(b"hi there".to_vec()).unwrap();
/// let mut reply = [0u8; 8];
/// client.read_exact(&mut reply).unwrap();
/// assert_eq!(&reply, b"hi there");
/// stop.stop();
/// running.join().unwrap();
/// ```
pub struct SingleServer {
    core: Option<ServerCore>,
    core_handle: Option<Handle>,
    local_addr: SocketAddr,
    ends: Ends,
    client: Option<(Postbox<Vec<u8>>, Postbox<Control>)>,
    /// Bytes for the client that its bridge had no room for.
    to_client: Option<Vec<u8>>,
    /// Bytes from the client that `outbox` had no room for.
    from_client: Option<Vec<u8>>,
    stopping: bool,
}

impl fmt::Debug for SingleServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SingleServer({})", self.local_addr)
    }
}

impl SingleServer {
    /// Binds now (a port in use is an error here, T2).
    pub fn new(addr: SocketAddr) -> Result<SingleServer, BindError> {
        SingleServer::with_options(addr, ServerOptions::default())
    }

    /// As [`new`](Self::new), with these options; `max_connections` is
    /// always 1.
    pub fn with_options(
        addr: SocketAddr,
        options: ServerOptions,
    ) -> Result<SingleServer, BindError> {
        let ends: Ends = Arc::default();
        let for_bridges = ends.clone();
        let options = ServerOptions {
            max_connections: Some(1),
            ..options
        };
        let core = ServerCore::new(
            move |_: &crate::ConnectionInfo| Bridge::new(for_bridges.clone()),
            addr,
            options,
        )?;
        Ok(SingleServer {
            local_addr: core.local_addr(),
            core: Some(core),
            core_handle: None,
            ends,
            client: None,
            to_client: None,
            from_client: None,
            stopping: false,
        })
    }

    /// The address listened on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl Component for SingleServer {
    type Boxes = SingleServerBoxes;

    fn name(&self) -> std::borrow::Cow<'static, str> {
        "SingleServer".into()
    }

    fn created(&mut self, _me: &Handle, boxes: &SingleServerBoxes) {
        boxes.inbox.set_limit(Some(crate::HANDLER_INBOX_LIMIT));
        boxes
            .from_client
            .set_limit(Some(crate::HANDLER_INBOX_LIMIT));
        let _ = self
            .ends
            .set((boxes.from_client.postbox(), boxes.bridge.postbox()));
    }

    fn main(&mut self, cx: &mut Cx<SingleServerBoxes>) -> Step {
        if let Some(core) = self.core.take() {
            let core = Handle::new(core);
            cx.add_child(&core);
            if let Err(e) = cx.activate(&core) {
                log::error!("singleserver {}: {e}", self.local_addr);
                return Step::Done;
            }
            self.core_handle = Some(core);
        }
        while let Some(event) = cx.bridge.recv() {
            match event {
                BridgeEvent::Joined { to_client, control } => {
                    self.client = Some((to_client, control));
                }
                BridgeEvent::Left => {
                    self.client = None;
                    self.to_client = None; // its connection has gone
                    let _ = cx.signal.send(Control::ProducerFinished);
                }
            }
        }
        // Client -> outbox.
        while let Some(bytes) = self.from_client.take().or_else(|| cx.from_client.recv()) {
            if let Err(full) = cx.outbox.send(bytes) {
                self.from_client = Some(full.into_inner()); // woken when there is room
                break;
            }
        }
        // inbox -> client, only while one is connected.
        if let Some((to, _)) = &self.client {
            while let Some(bytes) = self.to_client.take().or_else(|| cx.inbox.recv()) {
                if let Err(full) = cx.send_to(to, bytes) {
                    self.to_client = Some(full.into_inner()); // woken when there is room (A6)
                    break;
                }
            }
        }
        if let Some(msg) = cx.control.recv() {
            if !self.stopping {
                self.stopping = true;
                if let Some((_, control)) = &self.client {
                    let _ = control.send(msg.clone());
                }
                if let Some(core) = &self.core_handle {
                    if let Ok(p) = core.postbox::<Control>("control") {
                        let _ = p.send(msg);
                    }
                }
            }
        }
        if self.stopping && self.core_handle.as_ref().map_or(true, |c| c.is_done()) {
            return Step::Done;
        }
        Step::Pause
    }
}

boxes! {
    /// A [`Bridge`]'s boxes: a protocol handler's, and `_toClient`.
    struct BridgeBoxes {
        /// bytes from the client
        inbox: Inbox<Vec<u8>>,
        /// socketShutdown (the client has gone or half-closed), or the server's stop
        control: Inbox<Control>,
        /// bytes for the client
        outbox: Outbox<Vec<u8>>,
        /// producerFinished: close once written
        signal: Outbox<Control>,
        /// bytes for the client, from the SingleServer
        #[name = "_toClient"]
        to_client: Inbox<Vec<u8>>,
    }
}

/// The protocol handler of a [`SingleServer`]'s connection: passes bytes
/// between the connection and the server's own boxes.
struct Bridge {
    ends: Ends,
    joined: bool,
    up: Option<Vec<u8>>,
    down: Option<Vec<u8>>,
    ending: Option<Control>,
}

impl Bridge {
    fn new(ends: Ends) -> Bridge {
        Bridge {
            ends,
            joined: false,
            up: None,
            down: None,
            ending: None,
        }
    }
}

impl Component for Bridge {
    type Boxes = BridgeBoxes;

    fn name(&self) -> std::borrow::Cow<'static, str> {
        "SingleServer.Bridge".into()
    }

    fn created(&mut self, _me: &Handle, boxes: &BridgeBoxes) {
        boxes.to_client.set_limit(Some(crate::HANDLER_INBOX_LIMIT));
    }

    fn main(&mut self, cx: &mut Cx<BridgeBoxes>) -> Step {
        let Some((from_client, events)) = self.ends.get() else {
            log::error!("singleserver: a connection before the server was made");
            let _ = cx.signal.send(Control::ShutdownMicroprocess);
            return Step::Done;
        };
        if !self.joined {
            self.joined = true;
            // Unbounded: cannot fail while the server lives.
            let _ = events.send(BridgeEvent::Joined {
                to_client: cx.to_client.postbox(),
                control: cx.control.postbox(),
            });
        }
        while let Some(bytes) = self.up.take().or_else(|| cx.inbox.recv()) {
            if let Err(full) = cx.send_to(from_client, bytes) {
                self.up = Some(full.into_inner()); // woken when there is room (A6)
                break;
            }
        }
        while let Some(bytes) = self.down.take().or_else(|| cx.to_client.recv()) {
            if let Err(full) = cx.outbox.send(bytes) {
                self.down = Some(full.into_inner()); // woken when there is room
                break;
            }
        }
        if self.ending.is_none() {
            self.ending = cx.control.recv();
        }
        match self.ending.take() {
            Some(msg) if msg.is_shutdown_microprocess() => {
                let _ = events.send(BridgeEvent::Left);
                let _ = cx.signal.send(Control::ShutdownMicroprocess);
                Step::Done
            }
            // The client is done (or the server stops gracefully): pass on
            // what is held, then close.
            Some(msg) if self.up.is_some() || self.down.is_some() || !cx.to_client.is_empty() => {
                self.ending = Some(msg);
                Step::Pause
            }
            Some(_) => {
                let _ = events.send(BridgeEvent::Left);
                let _ = cx.signal.send(Control::ProducerFinished);
                Step::Done
            }
            None => Step::Pause,
        }
    }
}
