//! [`HttpHandler`]: one introspection HTTP connection (a protocol handler
//! for [`ServerCore`](chassis::ServerCore), H6).
//!
//! One request per connection, answered and closed (`Connection: close`),
//! except `/topology`, which streams. Everything it holds is bounded: the
//! request head is at most [`MAX_HEAD`] bytes (more is refused with 431 and
//! the connection closed), anything after the head is read and dropped, a
//! request whose head has not arrived within the head timeout (a silent or
//! trickling client) is closed, and garbage is refused with 400 and the
//! connection closed. Replies leave in chunks of at most [`CHUNK`] bytes,
//! each kept and sent again when the connection refuses it (A5).

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axon::{boxes, Component, Control, Cx, Handle, Inbox, Outbox, Postbox, Step};

use crate::graph::{SortBy, View};
use crate::introspector::{Want, FEED_EVERY};
use crate::kamaelia::Topology;
use crate::page;

/// The most bytes a request's line and headers may take.
pub const MAX_HEAD: usize = 8 * 1024;

/// The most headers a request may have.
pub const MAX_HEADERS: usize = 32;

/// The largest piece of a reply sent as one message.
pub const CHUNK: usize = 64 * 1024;

/// The most rows `/instances` gives, whatever `n` asks.
pub const MAX_ROWS: usize = 1000;

/// How long a client has to send its request head, by default.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

boxes! {
    /// An [`HttpHandler`]'s boxes.
    pub struct HttpBoxes {
        /// bytes from the client (the CSA's outbox)
        pub inbox: Inbox<Vec<u8>>,
        /// socketShutdown: the client sent all it will; shutdownMicroprocess: stop
        pub control: Inbox<Control>,
        /// the views the Introspector answers with
        pub view: Inbox<Arc<View>>,
        /// bytes to the client (the CSA's inbox)
        pub outbox: Outbox<Vec<u8>>,
        /// producerFinished once the reply is written
        pub signal: Outbox<Control>,
    }
}

/// What a parsed request asks for.
#[derive(Debug, Clone, PartialEq)]
enum Route {
    Page,
    Json,
    Dot {
        hide_own: bool,
    },
    Instances {
        kind: String,
        sort: SortBy,
        n: usize,
    },
    TopologyOnce {
        own: bool,
    },
    TopologyStream {
        own: bool,
    },
}

/// One introspection connection: parses the request with `httparse`,
/// asks the [`Introspector`](crate::Introspector) for a view, answers
/// from it and closes.
///
/// | box | | |
/// |---|---|---|
/// | `inbox` | in | the client's bytes: the request head (at most [`MAX_HEAD`]); the rest is dropped |
/// | `control` | in | `socketShutdown`: the client has sent all; before a whole head, the connection closes; after, the reply still goes (C7). `shutdownMicroprocess`: end now |
/// | `view` | in | the Introspector's answer to this handler's [`Want`] |
/// | `outbox` | out | the reply, in chunks of at most [`CHUNK`] bytes, each kept while the CSA has no room (A5) |
/// | `signal` | out | `producerFinished` once the reply is out (the CSA writes it all and closes, C5) |
///
/// Routes (GET or HEAD): `/` (the page, the first view embedded),
/// `/graph.json`, `/graph.dot` (`?own=0` hides the server's own),
/// `/instances?kind=K&sort=COL&n=N` (COL: `id`, `name`, `state`,
/// `queued`, `delivered`, `high_water`, `children`; N at most
/// [`MAX_ROWS`]), `/topology.txt` (Kamaelia's topology text, once) and
/// `/topology` (the same, then the changes once a second for as long as
/// the client reads; `?own=1` includes the server's own). Anything else
/// is 404; another method 405; a bad request 400; a head over
/// [`MAX_HEAD`] 431.
#[derive(Debug)]
pub struct HttpHandler {
    /// `None`: no Introspector to ask (every route needing one is 503).
    introspector: Option<Postbox<Want>>,
    head: Vec<u8>,
    /// The route being answered, once the head is in.
    route: Option<Route>,
    head_only: bool,
    /// A request the Introspector's full inbox refused (A5).
    held_want: Option<Want>,
    asked: bool,
    out: VecDeque<Vec<u8>>,
    /// Close once `out` is written.
    finishing: bool,
    /// The client said it will send no more.
    client_done: bool,
    started: Option<Instant>,
    head_timeout: Duration,
    /// `/topology`: what the client last heard, and when to look again.
    streamed: Option<Topology>,
    next_look: Option<Instant>,
}

impl HttpHandler {
    /// A handler asking `introspector` (the Introspector's `inbox`) for
    /// views; a client gets `head_timeout` to send its request head.
    pub fn new(introspector: Postbox<Want>, head_timeout: Duration) -> HttpHandler {
        HttpHandler::asking(Some(introspector), head_timeout)
    }

    fn asking(introspector: Option<Postbox<Want>>, head_timeout: Duration) -> HttpHandler {
        HttpHandler {
            introspector,
            head: Vec::new(),
            route: None,
            head_only: false,
            held_want: None,
            asked: false,
            out: VecDeque::new(),
            finishing: false,
            client_done: false,
            started: None,
            head_timeout,
            streamed: None,
            next_look: None,
        }
    }

    /// Queues a whole reply and the close after it.
    fn reply(&mut self, status: &str, content_type: &str, body: &[u8]) {
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
             Cache-Control: no-store\r\nConnection: close\r\n\r\n",
            body.len()
        );
        self.out.push_back(head.into_bytes());
        if !self.head_only {
            for piece in body.chunks(CHUNK) {
                self.out.push_back(piece.to_vec());
            }
        }
        self.finishing = true;
    }

    fn error(&mut self, status: &str) {
        self.reply(
            status,
            "text/plain; charset=utf-8",
            format!("{status}\n").as_bytes(),
        );
    }

    /// Reads what the client sent; parses the head once it is all in.
    fn take_input(&mut self, cx: &Cx<HttpBoxes>) {
        while let Some(chunk) = cx.inbox.recv() {
            if self.route.is_some() || self.finishing {
                continue; // a body or a pipelined request: dropped
            }
            let room = (MAX_HEAD + 1).saturating_sub(self.head.len());
            self.head.extend_from_slice(&chunk[..chunk.len().min(room)]);
            self.parse();
        }
    }

    fn parse(&mut self) {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&self.head) {
            Ok(httparse::Status::Complete(_)) => {
                let method = req.method.unwrap_or("");
                let path = req.path.unwrap_or("/").to_owned();
                self.head_only = method == "HEAD";
                if method != "GET" && method != "HEAD" {
                    self.error("405 Method Not Allowed");
                } else {
                    match route(&path) {
                        Ok(r) => self.route = Some(r),
                        Err(status) => self.error(status),
                    }
                }
                self.head = Vec::new();
            }
            Ok(httparse::Status::Partial) if self.head.len() > MAX_HEAD => {
                self.error("431 Request Header Fields Too Large");
            }
            Ok(httparse::Status::Partial) => {}
            Err(httparse::Error::TooManyHeaders) => {
                self.error("431 Request Header Fields Too Large");
            }
            Err(e) => {
                log::debug!("introspect http: bad request: {e}");
                self.error("400 Bad Request");
            }
        }
        if self.finishing {
            self.head = Vec::new();
        }
    }

    /// Asks the Introspector for a view, keeping a refused request (A5).
    fn ask(&mut self, cx: &Cx<HttpBoxes>) {
        let Some(introspector) = &self.introspector else {
            self.error("503 Service Unavailable");
            return;
        };
        let want = self.held_want.take().unwrap_or_else(|| Want {
            reply: cx.view.postbox(),
        });
        match cx.send_to(introspector, want) {
            Ok(()) => self.asked = true,
            Err(full) => self.held_want = Some(full.into_inner()),
        }
    }

    /// Answers the route from `view`.
    fn answer(&mut self, view: &View) {
        let Some(route) = self.route.clone() else {
            return;
        };
        match route {
            Route::Page => {
                let body = page::render(&view.graph.to_json());
                self.reply("200 OK", "text/html; charset=utf-8", body.as_bytes());
            }
            Route::Json => {
                let body = view.graph.to_json();
                self.reply("200 OK", "application/json", body.as_bytes());
            }
            Route::Dot { hide_own } => {
                let body = view.graph.to_dot(hide_own);
                self.reply(
                    "200 OK",
                    "text/vnd.graphviz; charset=utf-8",
                    body.as_bytes(),
                );
            }
            Route::Instances { kind, sort, n } => {
                let table = view.instances(&kind, sort, n);
                let body = serde_json::to_string(&table).unwrap_or_else(|_| "{}".into());
                self.reply("200 OK", "application/json", body.as_bytes());
            }
            Route::TopologyOnce { own } => {
                let skip = if own {
                    Default::default()
                } else {
                    view.own.clone()
                };
                let body = Topology::of(&view.snapshot, &skip).from_scratch();
                self.reply("200 OK", "text/plain; charset=utf-8", body.as_bytes());
            }
            Route::TopologyStream { own } => {
                let skip = if own {
                    Default::default()
                } else {
                    view.own.clone()
                };
                let now = Topology::of(&view.snapshot, &skip);
                let text = match &self.streamed {
                    None => {
                        self.out.push_back(
                            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n\
                              Cache-Control: no-store\r\nConnection: close\r\n\r\n"
                                .to_vec(),
                        );
                        now.from_scratch()
                    }
                    Some(old) => now.changes_from(old),
                };
                self.streamed = Some(now);
                if !text.is_empty() && !self.head_only {
                    self.out.push_back(text.into_bytes());
                }
                if self.head_only {
                    self.finishing = true;
                }
            }
        }
    }

    /// Sends what is queued; false if the connection has no room (A5).
    fn flush(&mut self, cx: &Cx<HttpBoxes>) -> bool {
        while let Some(piece) = self.out.pop_front() {
            if let Err(full) = cx.outbox.send(piece) {
                self.out.push_front(full.into_inner());
                return false;
            }
        }
        true
    }
}

impl Component for HttpHandler {
    type Boxes = HttpBoxes;

    fn name(&self) -> std::borrow::Cow<'static, str> {
        "HttpHandler".into()
    }

    fn main(&mut self, cx: &mut Cx<HttpBoxes>) -> Step {
        let now = Instant::now();
        let started = *self.started.get_or_insert_with(|| {
            cx.wake_at(now + self.head_timeout);
            now
        });
        while let Some(msg) = cx.control.recv() {
            if msg.is_producer_finished() {
                self.client_done = true; // socketShutdown: C7
            } else {
                return Step::Done;
            }
        }
        self.take_input(cx);
        if self.route.is_none() && !self.finishing {
            if self.client_done || now.duration_since(started) >= self.head_timeout {
                // Nothing to answer, or too slow to ask: close.
                log::debug!("introspect http: no request head; closing");
                self.finishing = true;
            } else {
                return Step::Pause;
            }
        }
        if self.route.is_some() && !self.finishing {
            let streaming = matches!(self.route, Some(Route::TopologyStream { .. }));
            if streaming && self.client_done {
                self.finishing = true;
            }
            if let Some(view) = cx.view.recv() {
                self.asked = false;
                self.answer(&view);
                if streaming && !self.finishing {
                    let at = Instant::now() + FEED_EVERY;
                    self.next_look = Some(at);
                    cx.wake_at(at);
                }
            }
            let due = self.next_look.map_or(true, |at| Instant::now() >= at);
            if !self.finishing && !self.asked && due && (!streaming || self.out.is_empty()) {
                // A stream whose client is not reading asks again only
                // once the last changes are out: bounded (A5).
                self.next_look = None;
                self.ask(cx);
            }
        }
        if !self.flush(cx) {
            return Step::Pause; // woken when the CSA takes from its inbox
        }
        if self.finishing {
            let _ = cx.signal.send(Control::ProducerFinished);
            return Step::Done;
        }
        Step::Pause
    }
}

/// The route for a request path, or the error status.
fn route(target: &str) -> Result<Route, &'static str> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let param = |name: &str| {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| decode(v))
    };
    Ok(match path {
        "/" | "/index.html" => Route::Page,
        "/graph.json" => Route::Json,
        "/graph.dot" => Route::Dot {
            hide_own: param("own").as_deref() == Some("0"),
        },
        "/instances" => {
            let kind = param("kind")
                .filter(|k| !k.is_empty())
                .ok_or("400 Bad Request")?;
            let sort = match param("sort") {
                None => SortBy::Queued,
                Some(s) => SortBy::parse(&s).ok_or("400 Bad Request")?,
            };
            let n = match param("n") {
                None => 20,
                Some(n) => n.parse::<usize>().map_err(|_| "400 Bad Request")?,
            };
            Route::Instances {
                kind,
                sort,
                n: n.min(MAX_ROWS),
            }
        }
        "/topology.txt" => Route::TopologyOnce {
            own: param("own").as_deref() == Some("1"),
        },
        "/topology" => Route::TopologyStream {
            own: param("own").as_deref() == Some("1"),
        },
        _ => return Err("404 Not Found"),
    })
}

/// Percent-decoding of a query value (`+` is a space); bad escapes are
/// kept as they are.
fn decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i..i + 3) {
            Some([b'%', h, l]) => hex(*h).zip(hex(*l)).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        match (escaped, bytes[i]) {
            (Some(b), _) => {
                out.push(b);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, b) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The introspection server's protocol factory: a handler for each
/// connection, asking the Introspector whose `inbox` is put in `slot`
/// (made after the server, which must bind first).
pub(crate) fn factory(
    slot: Arc<OnceLock<Postbox<Want>>>,
    head_timeout: Duration,
) -> impl FnMut() -> Handle + Send + Clone + 'static {
    move || Handle::new(HttpHandler::asking(slot.get().cloned(), head_timeout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_their_parameters() {
        assert_eq!(route("/"), Ok(Route::Page));
        assert_eq!(route("/graph.json?x=1"), Ok(Route::Json));
        assert_eq!(route("/graph.dot?own=0"), Ok(Route::Dot { hide_own: true }));
        assert_eq!(
            route("/instances?kind=Csa%40introspect&sort=delivered&n=5000"),
            Ok(Route::Instances {
                kind: "Csa@introspect".into(),
                sort: SortBy::Delivered,
                n: MAX_ROWS
            })
        );
        assert_eq!(route("/instances?sort=id"), Err("400 Bad Request"));
        assert_eq!(
            route("/instances?kind=Csa&sort=bogus"),
            Err("400 Bad Request")
        );
        assert_eq!(route("/instances?kind=Csa&n=-1"), Err("400 Bad Request"));
        assert_eq!(route("/etc/passwd"), Err("404 Not Found"));
    }

    #[test]
    fn query_values_are_percent_decoded() {
        assert_eq!(decode("a%40b+c"), "a@b c");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz"), "%zz");
    }
}
