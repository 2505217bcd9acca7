//! Where the operator serves TwitchChannels: every namespace, or a list.
//!
//! With a list the chart grants a namespaced Role in each listed namespace
//! and nothing cluster-wide, so every watch and list must stay inside those
//! namespaces: kube-runtime watches one namespace or all, so the operator
//! runs one watcher per namespace and merges them ([`watch`]).
//!
//! The Controller looks channels up in one reflector store, but a store fed
//! by several watchers would be wrong: a watcher's re-list (at start, after
//! a lost watch) replaces the whole store, wiping the other namespaces.
//! [`reflect`] keeps that store as the union instead: a re-list replaces only
//! its own namespace.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fmt::Debug;

use futures_util::stream::{self, Stream, StreamExt};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::store::Writer;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

/// The namespaces the operator serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every namespace (cluster-wide watches; the chart's ClusterRole).
    Cluster,
    /// Only these namespaces, sorted and distinct (a Role in each).
    Namespaces(Vec<String>),
}

impl Scope {
    /// One watch target per namespace (`None`: cluster-wide).
    fn targets(&self) -> Vec<Option<String>> {
        match self {
            Scope::Cluster => vec![None],
            Scope::Namespaces(list) => list.iter().cloned().map(Some).collect(),
        }
    }

    /// One `Api` per namespace, or one for all namespaces.
    pub fn apis<K>(&self, client: &Client) -> Vec<Api<K>>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        self.targets()
            .iter()
            .map(|target| api(client, target.as_deref()))
            .collect()
    }
}

/// The `Api` of one namespace (`None`: all namespaces).
fn api<K>(client: &Client, target: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match target {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Cluster => f.write_str("all namespaces"),
            Scope::Namespaces(list) => write!(f, "namespaces {}", list.join(", ")),
        }
    }
}

/// A watch event, or the watcher's error (after its backoff).
type WatchItem<K> = watcher::Result<watcher::Event<K>>;

/// The metadata of every `K` in `scope` matching `config` (metadata-only
/// requests: Secret values are never fetched), one watcher per namespace
/// merged, each with the default backoff.
pub fn watch<K>(
    client: &Client,
    scope: &Scope,
    config: &watcher::Config,
) -> impl Stream<Item = WatchItem<PartialObjectMeta<K>>> + Send
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + 'static,
    PartialObjectMeta<K>: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + DeserializeOwned
        + Clone
        + Debug
        + Send
        + 'static,
{
    let watchers = scope
        .apis::<PartialObjectMeta<K>>(client)
        .into_iter()
        .map(|api| watcher(api, config.clone()).default_backoff().boxed());
    stream::select_all(watchers)
}

/// Every `K` in `scope`, one watcher per namespace merged, each object
/// passed through `modify` and kept in `writer`'s store before its event
/// is passed on.
pub fn reflect<K>(
    client: &Client,
    scope: &Scope,
    config: &watcher::Config,
    writer: Writer<K>,
    modify: fn(&mut K),
) -> impl Stream<Item = WatchItem<K>> + Send
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static,
{
    let watchers = scope.targets().into_iter().map(|target| {
        watcher(api(client, target.as_deref()), config.clone())
            .default_backoff()
            .modify(modify)
            .map(move |item| (target.clone(), item))
            .boxed()
    });
    let mut union = Union::new(writer);
    stream::select_all(watchers).map(move |(target, item)| {
        if let Ok(event) = &item {
            union.apply(target.as_deref(), event);
        }
        item
    })
}

/// A reflector store holding the union of several watchers' objects.
struct Union<K: Resource<DynamicType = ()> + Clone + 'static> {
    /// The store's writer.
    writer: Writer<K>,
    /// A reader of the same store, to find what a re-list no longer has.
    reader: Store<K>,
    /// Per watcher (`None`: cluster-wide) re-listing now, the objects seen so far.
    relisting: HashMap<Option<String>, HashSet<ObjectRef<K>>>,
}

impl<K: Resource<DynamicType = ()> + Clone + 'static> Union<K> {
    /// Takes over `writer` and marks its store ready at once: an object is
    /// in the store before its event reaches the Controller, so it never
    /// needs to wait for every namespace's first list.
    fn new(mut writer: Writer<K>) -> Self {
        writer.apply_watcher_event(&watcher::Event::Init);
        writer.apply_watcher_event(&watcher::Event::InitDone);
        Union {
            reader: writer.as_reader(),
            writer,
            relisting: HashMap::new(),
        }
    }

    /// Applies one event of the watcher of `target` (`None`: cluster-wide).
    fn apply(&mut self, target: Option<&str>, event: &watcher::Event<K>) {
        use watcher::Event;
        let key = target.map(str::to_string);
        match event {
            Event::Apply(_) | Event::Delete(_) => self.writer.apply_watcher_event(event),
            Event::Init => {
                self.relisting.insert(key, HashSet::new());
            }
            Event::InitApply(obj) => {
                self.relisting
                    .entry(key)
                    .or_default()
                    .insert(ObjectRef::from_obj(obj));
                self.writer.apply_watcher_event(&Event::Apply(obj.clone()));
            }
            Event::InitDone => {
                let seen = self.relisting.remove(&key).unwrap_or_default();
                let gone = self.reader.state_filter(|obj| {
                    let in_target = target.is_none_or(|ns| obj.namespace().as_deref() == Some(ns));
                    in_target && !seen.contains(&ObjectRef::from_obj(obj))
                });
                for obj in gone {
                    self.writer
                        .apply_watcher_event(&Event::Delete(obj.as_ref().clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;
    use kube::runtime::reflector;
    use watcher::Event;

    fn cm(ns: &str, name: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        }
    }

    fn names(store: &Store<ConfigMap>) -> Vec<String> {
        let mut names: Vec<String> = store
            .state()
            .iter()
            .map(|o| format!("{}/{}", o.namespace().unwrap(), o.name_any()))
            .collect();
        names.sort();
        names
    }

    fn relist(union: &mut Union<ConfigMap>, ns: &str, objs: &[ConfigMap]) {
        union.apply(Some(ns), &Event::Init);
        for obj in objs {
            union.apply(Some(ns), &Event::InitApply(obj.clone()));
        }
        union.apply(Some(ns), &Event::InitDone);
    }

    #[tokio::test]
    async fn the_store_is_ready_before_any_namespace_is_listed() {
        let (reader, writer) = reflector::store::<ConfigMap>();
        let _union = Union::new(writer);
        reader.wait_until_ready().await.expect("ready");
        assert!(reader.is_empty());
    }

    #[test]
    fn a_relist_replaces_only_its_own_namespace() {
        let (reader, writer) = reflector::store();
        let mut union = Union::new(writer);
        relist(&mut union, "a", &[cm("a", "one"), cm("a", "two")]);
        relist(&mut union, "b", &[cm("b", "one")]);
        assert_eq!(names(&reader), ["a/one", "a/two", "b/one"]);
        // A lost watch in a: its re-list no longer has two.
        relist(&mut union, "a", &[cm("a", "one")]);
        assert_eq!(names(&reader), ["a/one", "b/one"]);
    }

    #[test]
    fn objects_of_a_relist_are_readable_before_it_ends() {
        let (reader, writer) = reflector::store();
        let mut union = Union::new(writer);
        relist(&mut union, "a", &[cm("a", "one")]);
        union.apply(Some("b"), &Event::Init);
        union.apply(Some("b"), &Event::InitApply(cm("b", "one")));
        // a's watch goes on meanwhile.
        union.apply(Some("a"), &Event::Apply(cm("a", "new")));
        assert_eq!(names(&reader), ["a/new", "a/one", "b/one"]);
        union.apply(Some("a"), &Event::Delete(cm("a", "one")));
        union.apply(Some("b"), &Event::InitDone);
        assert_eq!(names(&reader), ["a/new", "b/one"]);
    }

    #[test]
    fn a_cluster_wide_relist_replaces_everything() {
        let (reader, writer) = reflector::store();
        let mut union = Union::new(writer);
        union.apply(None, &Event::Apply(cm("a", "one")));
        union.apply(None, &Event::Apply(cm("b", "one")));
        union.apply(None, &Event::Init);
        union.apply(None, &Event::InitApply(cm("b", "one")));
        union.apply(None, &Event::InitDone);
        assert_eq!(names(&reader), ["b/one"]);
    }

    #[test]
    fn scope_names_its_namespaces() {
        assert_eq!(Scope::Cluster.to_string(), "all namespaces");
        let listed = Scope::Namespaces(vec!["a".into(), "b".into()]);
        assert_eq!(listed.to_string(), "namespaces a, b");
        assert_eq!(listed.targets(), [Some("a".into()), Some("b".into())]);
        assert_eq!(Scope::Cluster.targets(), [None]);
    }
}
