//! [`Registry`]: the namespaces of a server, static and dynamic, and the lifetime of the
//! dynamic ones (created on a client's first CONNECT, dropped when their last socket leaves).

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::handler::Guarded;
use crate::namespace::Namespace;

/// What decides whether a name is one of a dynamic family of namespaces.
pub(crate) enum Matcher {
    Pattern(regex_lite::Regex),
    Predicate(Arc<dyn Fn(&str) -> bool + Send + Sync>),
}

impl Matcher {
    fn matches(&self, name: &str) -> bool {
        match self {
            Self::Pattern(regex) => regex.is_match(name),
            Self::Predicate(predicate) => predicate(name),
        }
    }
}

struct Dynamic {
    matcher: Matcher,
    setup: Guarded,
}

/// The namespaces of one server, by name.
#[derive(Default)]
pub(crate) struct Registry {
    namespaces: RwLock<HashMap<Arc<str>, Arc<Namespace>>>,
    dynamic: RwLock<Vec<Dynamic>>,
}

impl Registry {
    fn read(&self) -> RwLockReadGuard<'_, HashMap<Arc<str>, Arc<Namespace>>> {
        self.namespaces.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<Arc<str>, Arc<Namespace>>> {
        self.namespaces.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The namespace `name`, if it exists now.
    pub(crate) fn get(&self, name: &str) -> Option<Arc<Namespace>> {
        self.read().get(name).cloned()
    }

    /// Every namespace that exists now.
    pub(crate) fn all(&self) -> Vec<Arc<Namespace>> {
        self.read().values().cloned().collect()
    }

    /// Serves `name` with `setup` from now on: the existing namespace (a dynamic one becomes
    /// the application's own), or one `create` builds.
    pub(crate) fn insert_static(
        &self,
        name: &str,
        setup: Guarded,
        create: impl FnOnce(Guarded) -> Arc<Namespace>,
    ) -> Arc<Namespace> {
        if let Some(ns) = self.get(name) {
            ns.set_setup(setup);
            ns.make_static();
            return ns;
        }
        // Built before taking the lock: the adapter factory is the application's code.
        let created = create(setup.clone());
        let mut namespaces = self.write();
        namespaces
            .entry(Arc::from(name))
            .and_modify(|ns| {
                ns.set_setup(setup);
                ns.make_static();
            })
            .or_insert(created)
            .clone()
    }

    /// Serves every name `matcher` accepts with `setup`, on first use.
    pub(crate) fn add_dynamic(&self, matcher: Matcher, setup: Guarded) {
        self.dynamic
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Dynamic { matcher, setup });
    }

    /// The namespace a client asks for: a static one, or a dynamic one `create` builds on
    /// first use. It comes back with one connect counted (under the map's lock, so a dynamic
    /// namespace cannot be dropped between here and the socket joining it); the connect flow
    /// ends the count.
    pub(crate) fn resolve(
        &self,
        name: &str,
        create: impl FnOnce(Guarded) -> Arc<Namespace>,
    ) -> Option<Arc<Namespace>> {
        if let Some(ns) = self.read().get(name) {
            ns.begin_connect();
            return Some(ns.clone());
        }
        let setup = {
            let dynamic = self.dynamic.read().unwrap_or_else(|e| e.into_inner());
            dynamic
                .iter()
                .find(|d| d.matcher.matches(name))
                .map(|d| d.setup.clone())?
        };
        let created = create(setup);
        let mut namespaces = self.write();
        let ns = namespaces.entry(Arc::from(name)).or_insert(created);
        ns.begin_connect();
        Some(ns.clone())
    }

    /// Drops a dynamic namespace nobody uses any more, so clients cannot grow the map.
    /// Returns whether it was dropped (its adapter is then to be closed).
    pub(crate) fn forget_if_unused(&self, ns: &Arc<Namespace>) -> bool {
        if !ns.is_dynamic() || !ns.is_empty() {
            return false;
        }
        let mut namespaces = self.write();
        let same = namespaces
            .get(&ns.name)
            .is_some_and(|current| Arc::ptr_eq(current, ns));
        if same && ns.is_empty() {
            namespaces.remove(&ns.name);
            return true;
        }
        false
    }

    /// The names of the namespaces that exist now.
    pub(crate) fn names(&self) -> Vec<String> {
        self.read().keys().map(|n| n.to_string()).collect()
    }
}
