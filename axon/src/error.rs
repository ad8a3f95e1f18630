//! Every error type of the crate, one per operation.

use std::fmt;

/// Why a linkage could not be made (A3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkError {
    /// The named component has no box of that name.
    NoSuchBox {
        /// The component's name.
        component: String,
        /// The missing box.
        name: String,
    },
    /// The two boxes carry different message types: the link is refused
    /// when it is made, so a delivery can never meet the wrong type.
    TypeMismatch {
        /// The source box.
        source: String,
        /// The source box's message type.
        source_type: &'static str,
        /// The destination box.
        sink: String,
        /// The destination box's message type.
        sink_type: &'static str,
    },
    /// One source may not feed two destinations (A3).
    AlreadyLinked {
        /// The source box.
        source: String,
        /// The box it already feeds.
        existing: String,
    },
    /// An inbox can pass through only to another inbox.
    InboxToOutbox {
        /// The inbox.
        source: String,
        /// The outbox.
        sink: String,
    },
    /// The linkage would make a loop of boxes.
    Cycle {
        /// The source box.
        source: String,
        /// The destination box.
        sink: String,
    },
    /// Composition (Pipeline, Graphline) named a child that does not exist.
    NoSuchChild(String),
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkError::NoSuchBox { component, name } => {
                write!(f, "component {component:?} has no box named {name:?}")
            }
            LinkError::TypeMismatch {
                source,
                source_type,
                sink,
                sink_type,
            } => write!(
                f,
                "cannot link {source} (carries {source_type}) to {sink} (carries {sink_type}): message types differ"
            ),
            LinkError::AlreadyLinked { source, existing } => write!(
                f,
                "{source} already feeds {existing}: one source may not feed two destinations"
            ),
            LinkError::InboxToOutbox { source, sink } => {
                write!(f, "cannot link inbox {source} to outbox {sink}")
            }
            LinkError::Cycle { source, sink } => {
                write!(f, "linking {source} to {sink} would make a loop")
            }
            LinkError::NoSuchChild(name) => write!(f, "no child named {name:?}"),
        }
    }
}

impl std::error::Error for LinkError {}

/// A send met a full inbox (A5: Kamaelia's "no space in box"). The message
/// is given back; the sender is woken when space frees (A6), so the usual
/// response is to keep the message and pause.
#[derive(PartialEq, Eq)]
pub struct NoSpace<T>(pub T);

impl<T> NoSpace<T> {
    /// Takes the message back.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for NoSpace<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NoSpace(..)")
    }
}

impl<T> fmt::Display for NoSpace<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no space in box")
    }
}

impl<T> std::error::Error for NoSpace<T> {}

/// A box was asked for by a name it does not have or with a message type it
/// does not carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoxError {
    /// No box of that name and direction.
    NoSuchBox {
        /// The component's name.
        component: String,
        /// The missing box.
        name: String,
    },
    /// The box carries another type.
    WrongType {
        /// The box.
        name: String,
        /// What it carries.
        carries: &'static str,
        /// What was asked for.
        asked: &'static str,
    },
}

impl fmt::Display for BoxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BoxError::NoSuchBox { component, name } => {
                write!(f, "component {component:?} has no box named {name:?}")
            }
            BoxError::WrongType {
                name,
                carries,
                asked,
            } => write!(f, "box {name:?} carries {carries}, not {asked}"),
        }
    }
}

impl std::error::Error for BoxError {}

/// Errors of the Coordinating Assistant Tracker (A9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatError {
    /// `register_service` / `track_value`: the name is taken.
    AlreadyRegistered(String),
    /// `retrieve_*` / `deregister_service` / `update_value`: no such name.
    NotFound(String),
    /// `register_service`: the component has no inbox of that name.
    NoSuchInbox {
        /// The service name.
        service: String,
        /// The missing inbox.
        inbox: String,
    },
    /// `retrieve_value`: the value has another type.
    WrongType {
        /// The value's name.
        name: String,
        /// The type asked for.
        asked: &'static str,
    },
}

impl fmt::Display for CatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CatError::AlreadyRegistered(n) => write!(f, "{n:?} is already registered"),
            CatError::NotFound(n) => write!(f, "{n:?} is not registered"),
            CatError::NoSuchInbox { service, inbox } => {
                write!(
                    f,
                    "service {service:?}: the component has no inbox {inbox:?}"
                )
            }
            CatError::WrongType { name, asked } => {
                write!(f, "tracked value {name:?} is not a {asked}")
            }
        }
    }
}

impl std::error::Error for CatError {}

/// A handle could not be activated.
#[derive(Debug)]
pub enum ActivateError {
    /// It was activated before (a component runs once).
    AlreadyActivated(String),
    /// It is an [`Endpoint`](crate::Endpoint), which has no body to run.
    NoBody(String),
    /// The OS refused a thread for a threaded component.
    Spawn {
        /// The component's name.
        component: String,
        /// What the OS said.
        error: std::io::Error,
    },
}

impl fmt::Display for ActivateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActivateError::AlreadyActivated(n) => {
                write!(f, "component {n:?} was already activated")
            }
            ActivateError::NoBody(n) => write!(f, "{n:?} is an endpoint and has nothing to run"),
            ActivateError::Spawn { component, .. } => {
                write!(f, "cannot start a thread for {component:?}")
            }
        }
    }
}

impl std::error::Error for ActivateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ActivateError::Spawn { error, .. } => Some(error),
            _ => None,
        }
    }
}
