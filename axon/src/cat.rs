//! The Coordinating Assistant Tracker (A9): named services and tracked
//! values.
//!
//! Kamaelia keeps one CAT per process; here each [`Scheduler`](crate::Scheduler)
//! has its own (reach it with [`Cx::cat`](crate::Cx::cat) or
//! [`Scheduler::cat`](crate::Scheduler::cat)), so that independent systems,
//! such as tests running side by side in one process, cannot see each other's
//! services.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

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
/// assert_eq!((component.name(), inbox.as_str()), ("echo", "requests"));
/// assert_eq!(
///     cat.register_service("echo", service.handle(), "requests"),
///     Err(CatError::AlreadyRegistered("echo".into()))
/// );
/// cat.deregister_service("echo").unwrap();
/// assert_eq!(cat.deregister_service("echo"), Err(CatError::NotFound("echo".into())));
/// ```
#[derive(Default)]
pub struct Cat {
    services: Mutex<HashMap<String, (Handle, String)>>,
    values: Mutex<HashMap<String, Arc<dyn Any + Send + Sync>>>,
}

impl fmt::Debug for Cat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cat")
            .field("services", &lock(&self.services).keys().collect::<Vec<_>>())
            .field("values", &lock(&self.values).keys().collect::<Vec<_>>())
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
    pub fn register_service(
        &self,
        name: &str,
        component: &Handle,
        inbox: &str,
    ) -> Result<(), CatError> {
        if component.0.find(inbox, Direction::Inbox).is_none() {
            return Err(CatError::NoSuchInbox {
                service: name.to_owned(),
                inbox: inbox.to_owned(),
            });
        }
        let mut services = lock(&self.services);
        if services.contains_key(name) {
            return Err(CatError::AlreadyRegistered(name.to_owned()));
        }
        log::trace!("CAT: register service {name:?} = {component:?}.{inbox}");
        services.insert(name.to_owned(), (component.clone(), inbox.to_owned()));
        Ok(())
    }

    /// The `(component, inbox)` registered under `name`.
    pub fn retrieve_service(&self, name: &str) -> Result<(Handle, String), CatError> {
        lock(&self.services)
            .get(name)
            .cloned()
            .ok_or_else(|| CatError::NotFound(name.to_owned()))
    }

    /// Removes the service `name`; an error if there is none.
    pub fn deregister_service(&self, name: &str) -> Result<(), CatError> {
        log::trace!("CAT: deregister service {name:?}");
        lock(&self.services)
            .remove(name)
            .map(drop)
            .ok_or_else(|| CatError::NotFound(name.to_owned()))
    }

    /// Starts tracking a named value; an error if the name is taken.
    pub fn track_value<T: Any + Send + Sync>(&self, name: &str, value: T) -> Result<(), CatError> {
        let mut values = lock(&self.values);
        if values.contains_key(name) {
            return Err(CatError::AlreadyRegistered(name.to_owned()));
        }
        values.insert(name.to_owned(), Arc::new(value));
        Ok(())
    }

    /// Replaces a tracked value; an error if the name is not tracked.
    pub fn update_value<T: Any + Send + Sync>(&self, name: &str, value: T) -> Result<(), CatError> {
        match lock(&self.values).get_mut(name) {
            Some(slot) => {
                *slot = Arc::new(value);
                Ok(())
            }
            None => Err(CatError::NotFound(name.to_owned())),
        }
    }

    /// A copy of a tracked value.
    pub fn retrieve_value<T: Any + Send + Sync + Clone>(&self, name: &str) -> Result<T, CatError> {
        let values = lock(&self.values);
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
        lock(&self.values)
            .remove(name)
            .map(drop)
            .ok_or_else(|| CatError::NotFound(name.to_owned()))
    }

    /// Forgets every service and value: what a stopped scheduler does, so
    /// that nothing it registered (a Selector and its sockets) outlives it.
    pub(crate) fn clear(&self) {
        let services = std::mem::take(&mut *lock(&self.services));
        let values = std::mem::take(&mut *lock(&self.values));
        drop((services, values));
    }
}
