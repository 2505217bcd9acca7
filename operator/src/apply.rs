//! Applying the desired children: server-side apply under one field
//! manager, skipped when the live object already says everything the
//! desired one says, and deletion of labelled children no longer wanted.
//!
//! The skip matters for "no hot loop": an apply that changes nothing is
//! still a write request, and a hundred channels resynced together would
//! make a hundred of them. [`contains`] compares the desired object as a
//! subset of the live one (the server adds defaults and other managers'
//! fields, which are not drift); anything we set that differs is drift,
//! and is applied again.

use std::fmt::Debug;

use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::build::MANAGER;
use crate::Result;

/// True when every field in `desired` has the same value in `live`.
/// Objects may have extra keys; arrays must match element by element.
pub fn contains(live: &Value, desired: &Value) -> bool {
    match (live, desired) {
        (Value::Object(l), Value::Object(d)) => d
            .iter()
            .all(|(k, dv)| dv.is_null() || l.get(k).is_some_and(|lv| contains(lv, dv))),
        (Value::Array(l), Value::Array(d)) => {
            l.len() == d.len() && l.iter().zip(d).all(|(lv, dv)| contains(lv, dv))
        }
        (l, d) => l == d,
    }
}

/// Applies `desired` unless `live` already matches; returns whether it wrote.
pub async fn ensure<K>(api: &Api<K>, desired: &K, live: Option<&K>) -> Result<bool>
where
    K: Resource + Clone + Serialize + DeserializeOwned + Debug,
{
    if let Some(live) = live {
        let (l, d) = (serde_json::to_value(live), serde_json::to_value(desired));
        if let (Ok(l), Ok(d)) = (l, d) {
            if contains(&l, &d) {
                return Ok(false);
            }
        }
    }
    let params = PatchParams::apply(MANAGER).force();
    api.patch(&desired.name_any(), &params, &Patch::Apply(desired))
        .await?;
    Ok(true)
}

/// Lists the children of one kind carrying `selector`.
pub async fn list<K>(api: &Api<K>, selector: &str) -> Result<Vec<K>>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    Ok(api
        .list(&ListParams::default().labels(selector))
        .await?
        .items)
}

/// Deletes every object in `live` not named `keep`; returns how many.
/// A child already gone (404) counts as deleted.
pub async fn remove_orphans<K>(api: &Api<K>, live: &[K], keep: Option<&str>) -> Result<usize>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let mut removed = 0;
    for obj in live.iter().filter(|o| Some(o.name_any().as_str()) != keep) {
        match api
            .delete(&obj.name_any(), &DeleteParams::background())
            .await
        {
            Ok(_) => removed += 1,
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(removed)
}

/// The object in `live` named `name`.
pub fn named<'a, K: Resource>(live: &'a [K], name: &str) -> Option<&'a K> {
    live.iter().find(|o| o.meta().name.as_deref() == Some(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_and_foreign_fields_are_not_drift() {
        let desired = json!({"spec": {"replicas": 1, "ports": [{"port": 80}]}, "x": null});
        let live = json!({"spec": {"replicas": 1, "clusterIP": "10.0.0.1",
                          "ports": [{"port": 80, "protocol": "TCP"}]}, "status": {}});
        assert!(contains(&live, &desired));
    }

    #[test]
    fn changed_values_and_list_lengths_are_drift() {
        let desired = json!({"spec": {"replicas": 2, "ports": [{"port": 80}]}});
        let live = json!({"spec": {"replicas": 1, "ports": [{"port": 80}]}});
        assert!(!contains(&live, &desired));
        let desired = json!({"env": [{"name": "A"}]});
        let live = json!({"env": [{"name": "A"}, {"name": "B"}]});
        assert!(!contains(&live, &desired));
        assert!(!contains(&json!({}), &json!({"a": 1})));
    }

    #[test]
    fn a_built_deployment_matches_itself_after_server_defaults() {
        let config = crate::config::Config::for_tests("http://x/helix", "http://x/oauth2");
        let d = crate::build::deployment(&crate::fixtures::channel("a"), &config);
        let mut live = serde_json::to_value(&d).unwrap();
        live["metadata"]["resourceVersion"] = json!("5");
        live["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"] =
            json!("/dev/termination-log");
        live["spec"]["progressDeadlineSeconds"] = json!(600);
        assert!(contains(&live, &serde_json::to_value(&d).unwrap()));
    }
}
