//! The Coordinating Assistant Tracker (A9): named services and tracked
//! values.
//!
//! Kamaelia keeps one CAT per process; here each [`Scheduler`](crate::Scheduler)
//! has its own (reach it with [`Cx::cat`](crate::Cx::cat) or
//! [`Scheduler::cat`](crate::Scheduler::cat)), so that independent systems,
//! such as tests running side by side in one process, cannot see each other's
//! services.

use crate::sync::Mutex;
use rustc_hash::FxHashMap as HashMap;
use std::any::Any;
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use crate::declare::Direction;
use crate::error::CatError;
use crate::handle::Handle;
use crate::sync::lock;

/// A registry of services (`name → (component, inbox)`) and of named values.
///
/// ```
/// use axon::{boxes, Cat, CatError, Endpoint, Inbox};
///
/// boxes! {
///     struct EchoService {
///         /// lines to echo
///         requests: Inbox<String>,
///     }
/// }
///
/// let cat = Cat::new();
/// let service = Endpoint::<EchoService>::new("echo");
/// cat.register_service("echo", service.handle(), "requests").unwrap();
/// let (component, inbox) = cat.retrieve_service("echo").unwrap();
/// assert_eq!((component.name(), &*inbox), ("echo", "requests"));
/// assert_eq!(
///     cat.register_service("echo", service.handle(), "requests"),
///     Err(CatError::AlreadyRegistered("echo".into()))
/// );
/// cat.deregister_service("echo").unwrap();
/// assert_eq!(cat.deregister_service("echo"), Err(CatError::NotFound("echo".into())));
/// ```
///
/// ## Services shared between schedulers
///
/// A server spread over several schedulers (one per core: see
/// `chassis::ServerCore::threads`) keeps one CAT per scheduler, so that
/// each shard finds its own Selector. An application service (a
/// Backplane) lives on one of them and must be found from all:
/// [`consult_after`](Cat::consult_after) makes this CAT's
/// [`find_service`](Cat::find_service) go on to another CAT when the name
/// is not here. [`retrieve_service`](Cat::retrieve_service) never looks
/// further than this CAT.
///
/// ```
/// use axon::{Cat, Endpoint, Standard};
///
/// let process = Cat::new();
/// let shard = Cat::new();
/// shard.consult_after(&process);
/// let hub = Endpoint::<Standard<String, ()>>::new("hub");
/// process.register_service("hub", hub.handle(), "inbox").unwrap();
/// assert!(shard.retrieve_service("hub").is_err()); // this CAT only
/// let (found, _) = shard.find_service("hub").unwrap(); // then `process`
/// assert_eq!(found.id(), hub.handle().id());
/// ```
///
/// A `Cat` is a handle: a clone is the same tracker.
#[derive(Clone, Default)]
pub struct Cat {
    inner: Arc<Tables>,
}

#[derive(Default)]
struct Tables {
    services: Mutex<HashMap<String, (Handle, Cow<'static, str>)>>,
    values: Mutex<HashMap<String, Arc<dyn Any + Send + Sync>>>,
    /// Where [`find_service`](Cat::find_service) looks next.
    upstream: Mutex<Option<Cat>>,
}

/// How many CATs [`Cat::find_service`] visits at most: a chain of
/// [`Cat::consult_after`] that loops back ends there.
const MAX_HOPS: usize = 8;

impl fmt::Debug for Cat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cat")
            .field(
                "services",
                &lock(&self.inner.services).keys().collect::<Vec<_>>(),
            )
            .field(
                "values",
                &lock(&self.inner.values).keys().collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Cat {
    /// An empty tracker.
    pub fn new() -> Self {
        Cat::default()
    }

    /// Registers `name` as the service `(component, inbox)`. Errors: the
    /// name is taken, or the component has no such inbox.
    ///
    /// The inbox's name is kept as given: a string literal (the usual
    /// case) is not copied, here or by each look-up.
    pub fn register_service(
        &self,
        name: &str,
        component: &Handle,
        inbox: impl Into<Cow<'static, str>>,
    ) -> Result<(), CatError> {
        let inbox = inbox.into();
        if component.0.find(&inbox, Direction::Inbox).is_none() {
            return Err(CatError::NoSuchInbox {
                service: name.to_owned(),
                inbox: inbox.into_owned(),
            });
        }
        let mut services = lock(&self.inner.services);
        if services.contains_key(name) {
            return Err(CatError::AlreadyRegistered(name.to_owned()));
        }
        log::trace!("CAT: register service {name:?} = {component:?}.{inbox}");
        services.insert(name.to_owned(), (component.clone(), inbox));
        Ok(())
    }

    /// The `(component, inbox)` registered under `name` in this CAT (never
    /// one it consults: see [`find_service`](Self::find_service)).
    pub fn retrieve_service(&self, name: &str) -> Result<(Handle, Cow<'static, str>), CatError> {
        lock(&self.inner.services)
            .get(name)
            .cloned()
            .ok_or_else(|| CatError::NotFound(name.to_owned()))
    }

    /// Makes [`find_service`](Self::find_service) look in `upstream` for
    /// a name this CAT does not have (and on to the CAT `upstream`
    /// consults, up to 8 in all). Replaces an earlier upstream. Only
    /// services are shared: values, and [`retrieve_service`](Self::retrieve_service),
    /// stay this CAT's own.
    pub fn consult_after(&self, upstream: &Cat) {
        *lock(&self.inner.upstream) = Some(upstream.clone());
    }

    /// The `(component, inbox)` registered under `name` here or, if not,
    /// in the CATs this one consults ([`consult_after`](Self::consult_after)),
    /// nearest first. Errors: [`CatError::NotFound`] when none has it.
    pub fn find_service(&self, name: &str) -> Result<(Handle, Cow<'static, str>), CatError> {
        let mut cat = self.clone();
        for _ in 0..MAX_HOPS {
            if let Ok(found) = cat.retrieve_service(name) {
                return Ok(found);
            }
            let next = lock(&cat.inner.upstream).clone();
            match next {
                Some(next) => cat = next,
                None => break,
            }
        }
        Err(CatError::NotFound(name.to_owned()))
    }

    /// Removes the service `name`; an error if there is none.
    pub fn deregister_service(&self, name: &str) -> Result<(), CatError> {
        log::trace!("CAT: deregister service {name:?}");
        lock(&self.inner.services)
            .remove(name)
            .map(drop)
            .ok_or_else(|| CatError::NotFound(name.to_owned()))
    }

    /// Starts tracking a named value; an error if the name is taken.
    pub fn track_value<T: Any + Send + Sync>(&self, name: &str, value: T) -> Result<(), CatError> {
        let mut values = lock(&self.inner.values);
        if values.contains_key(name) {
            return Err(CatError::AlreadyRegistered(name.to_owned()));
        }
        values.insert(name.to_owned(), Arc::new(value));
        Ok(())
    }

    /// Replaces a tracked value; an error if the name is not tracked.
    pub fn update_value<T: Any + Send + Sync>(&self, name: &str, value: T) -> Result<(), CatError> {
        match lock(&self.inner.values).get_mut(name) {
            Some(slot) => {
                *slot = Arc::new(value);
                Ok(())
            }
            None => Err(CatError::NotFound(name.to_owned())),
        }
    }

    /// A copy of a tracked value.
    pub fn retrieve_value<T: Any + Send + Sync + Clone>(&self, name: &str) -> Result<T, CatError> {
        let values = lock(&self.inner.values);
        let value = values
            .get(name)
            .ok_or_else(|| CatError::NotFound(name.to_owned()))?;
        value
            .downcast_ref::<T>()
            .cloned()
            .ok_or_else(|| CatError::WrongType {
                name: name.to_owned(),
                asked: std::any::type_name::<T>(),
            })
    }

    /// Stops tracking a value; an error if the name is not tracked.
    pub fn forget_value(&self, name: &str) -> Result<(), CatError> {
        lock(&self.inner.values)
            .remove(name)
            .map(drop)
            .ok_or_else(|| CatError::NotFound(name.to_owned()))
    }

    /// Forgets every service and value: what a stopped scheduler does, so
    /// that nothing it registered (a Selector and its sockets) outlives it.
    pub(crate) fn clear(&self) {
        let services = std::mem::take(&mut *lock(&self.inner.services));
        let values = std::mem::take(&mut *lock(&self.inner.values));
        let upstream = lock(&self.inner.upstream).take();
        drop((services, values, upstream));
    }
}
