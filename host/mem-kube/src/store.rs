//! The object store: typed collections, resourceVersions, the event log watches resume from, finalizers,
//! owner-reference garbage collection, status subresources and generations.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use chrono::{SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use crate::error::ApiError;
use crate::resources::{self, ResourceType};
use crate::schema;
use crate::selectors::{FieldSelector, LabelSelector};

/// Watch event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Removed.
    Deleted,
}

impl EventType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as watches see it.
#[derive(Debug, Clone)]
pub struct Event {
    /// The resourceVersion of the change.
    pub rv: u64,
    /// (group, plural).
    pub key: (String, String),
    /// Namespace ("" for cluster-scoped).
    pub namespace: String,
    /// Kind of change.
    pub kind: EventType,
    /// The object after the change (before, for deletions), shared with the store.
    pub object: Arc<Value>,
}

/// Objects are shared between the collection and the event log, so the log costs no copies.
type Collection = BTreeMap<(String, String), Arc<Value>>;

/// List options.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Label selector.
    pub labels: LabelSelector,
    /// Field selector.
    pub fields: FieldSelector,
    /// Page size (0 = all).
    pub limit: usize,
    /// Continue token from the previous page.
    pub continue_token: Option<String>,
}

/// A page of a list.
#[derive(Debug, Clone)]
pub struct ListPage {
    /// Items.
    pub items: Vec<Value>,
    /// resourceVersion of the list.
    pub rv: u64,
    /// Token for the next page, if any.
    pub continue_token: Option<String>,
}

/// Write faults: the next N writes to a resource fail.
#[derive(Debug, Clone, Copy)]
struct WriteFault {
    remaining: u32,
    code: u16,
}

/// Everything stored.
pub struct Store {
    types: Vec<ResourceType>,
    objects: HashMap<(String, String), Collection>,
    rv: u64,
    log: VecDeque<Arc<Event>>,
    log_capacity: usize,
    events: broadcast::Sender<Arc<Event>>,
    write_faults: HashMap<String, WriteFault>,
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn random_suffix() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

fn name_of(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

/// The object without metadata and status: what `generation` tracks.
fn spec_part(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(map) = copy.as_object_mut() {
        for key in ["metadata", "status", "apiVersion", "kind"] {
            map.remove(key);
        }
    }
    copy
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric()
}

impl Store {
    /// A store with the built-in kinds and the `default` and `kube-system` namespaces.
    pub fn new(log_capacity: usize) -> Self {
        let (events, _) = broadcast::channel(4096);
        let mut store = Store {
            types: resources::builtins(),
            objects: HashMap::new(),
            rv: 0,
            log: VecDeque::new(),
            log_capacity,
            events,
            write_faults: HashMap::new(),
        };
        for ns in ["default", "kube-system"] {
            let namespace = json!({"metadata": {"name": ns}, "status": {"phase": "Active"}});
            let rt = store.resolve("", "v1", "namespaces").expect("built in");
            store.create(&rt, "", namespace).expect("fresh store");
        }
        store
    }

    /// New events as they happen.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }

    /// Watches being served (each holds one subscription).
    pub fn open_watches(&self) -> usize {
        self.events.receiver_count()
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// Every served resource type.
    pub fn types(&self) -> &[ResourceType] {
        &self.types
    }

    /// The type at a group/version/plural.
    pub fn resolve(&self, group: &str, version: &str, plural: &str) -> Option<ResourceType> {
        self.types.iter().find(|t| t.group == group && t.version == version && t.plural == plural).cloned()
    }

    /// Makes the next `count` writes to `plural` fail with `code`: 409 (conflict), 403 (an exceeded quota, as a
    /// ResourceQuota answers), 422 (invalid), anything else a 500.
    pub fn fail_writes(&mut self, plural: &str, count: u32, code: u16) {
        self.write_faults.insert(plural.into(), WriteFault { remaining: count, code });
    }

    fn injected_fault(&mut self, rt: &ResourceType) -> Result<(), ApiError> {
        let Some(fault) = self.write_faults.get_mut(&rt.plural) else { return Ok(()) };
        fault.remaining = fault.remaining.saturating_sub(1);
        let code = fault.code;
        if fault.remaining == 0 {
            self.write_faults.remove(&rt.plural);
        }
        Err(match code {
            409 => ApiError::Conflict(format!("injected conflict on {}", rt.plural)),
            403 => ApiError::Forbidden(format!(
                "{} is forbidden: exceeded quota: injected-quota, requested: pods=1, used: pods=10, limited: pods=10",
                rt.plural
            )),
            422 => ApiError::Invalid(format!("injected: {} is invalid", rt.plural)),
            _ => ApiError::Internal(format!("injected failure on {}", rt.plural)),
        })
    }

    /// Events after `rv`, or Gone when the log no longer reaches back that far.
    pub fn events_since(&self, rv: u64) -> Result<Vec<Arc<Event>>, ApiError> {
        if let Some(oldest) = self.log.front()
            && rv + 1 < oldest.rv
            && rv < self.rv
        {
            return Err(ApiError::Gone(format!("too old resource version: {rv} ({})", oldest.rv - 1)));
        }
        Ok(self.log.iter().filter(|e| e.rv > rv).cloned().collect())
    }

    fn emit(&mut self, rt: &ResourceType, namespace: &str, kind: EventType, object: Arc<Value>) {
        let event = Arc::new(Event { rv: self.rv, key: rt.key(), namespace: namespace.into(), kind, object });
        self.log.push_back(event.clone());
        while self.log.len() > self.log_capacity {
            self.log.pop_front();
        }
        let _ = self.events.send(event);
    }

    fn collection(&mut self, rt: &ResourceType) -> &mut Collection {
        self.objects.entry(rt.key()).or_default()
    }

    fn stamp(&mut self, rt: &ResourceType, object: &mut Value) {
        self.rv += 1;
        object["apiVersion"] = rt.api_version().into();
        object["kind"] = rt.kind.clone().into();
        object["metadata"]["resourceVersion"] = self.rv.to_string().into();
    }

    /// One object.
    ///
    /// # Errors
    /// NotFound.
    pub fn get(&self, rt: &ResourceType, namespace: &str, name: &str) -> Result<Value, ApiError> {
        self.objects
            .get(&rt.key())
            .and_then(|c| c.get(&(namespace.to_string(), name.to_string())))
            .map(|o| Value::clone(o))
            .ok_or_else(|| ApiError::NotFound(format!("{} \"{name}\" not found", rt.plural)))
    }

    /// A page of objects. Every page of a list carries the first page's resourceVersion (the continue token
    /// keeps it), as the API server's do: a watch from there replays whatever changed while the pages were read
    /// (the pages themselves are read live, so a client may see a change twice, never miss one).
    pub fn list(&self, rt: &ResourceType, options: &ListOptions) -> ListPage {
        let empty = Collection::new();
        let collection = self.objects.get(&rt.key()).unwrap_or(&empty);
        let token = options.continue_token.as_deref().and_then(|t| t.split_once(':'));
        let rv = token.and_then(|(rv, _)| rv.parse().ok()).unwrap_or(self.rv);
        let after: Option<(String, String)> =
            token.and_then(|(_, key)| key.split_once('/')).map(|(a, b)| (a.into(), b.into()));
        let mut items = Vec::new();
        let mut last_key = None;
        let mut more = false;
        for (key, object) in collection {
            if after.as_ref().is_some_and(|a| key <= a) {
                continue;
            }
            if options.namespace.as_ref().is_some_and(|ns| &key.0 != ns) {
                continue;
            }
            if !options.labels.matches(object) || !options.fields.matches(object) {
                continue;
            }
            if options.limit > 0 && items.len() == options.limit {
                more = true;
                break;
            }
            items.push(Value::clone(object));
            last_key = Some(key.clone());
        }
        let continue_token = more.then(|| last_key.map(|(ns, name)| format!("{rv}:{ns}/{name}"))).flatten();
        ListPage { items, rv, continue_token }
    }

    /// Creates an object (generateName, uid, creationTimestamp, generation).
    ///
    /// # Errors
    /// AlreadyExists, NotFound (namespace), Invalid (name), injected faults.
    pub fn create(&mut self, rt: &ResourceType, namespace: &str, mut object: Value) -> Result<Value, ApiError> {
        if !object.is_object() {
            return Err(ApiError::BadRequest("the body must be an object".into()));
        }
        self.injected_fault(rt)?;
        if rt.namespaced {
            let ns = object["metadata"]["namespace"].as_str().unwrap_or(namespace).to_string();
            if ns != namespace && !namespace.is_empty() {
                return Err(ApiError::BadRequest("the namespace of the object does not match the request".into()));
            }
            let namespaces = self.resolve("", "v1", "namespaces").expect("built in");
            self.get(&namespaces, "", namespace)
                .map_err(|_| ApiError::NotFound(format!("namespaces \"{namespace}\" not found")))?;
        }
        if !object["metadata"].is_object() {
            object["metadata"] = json!({});
        }
        let mut name = name_of(&object).to_string();
        if name.is_empty() {
            let Some(prefix) = object["metadata"]["generateName"].as_str() else {
                return Err(ApiError::Invalid("metadata.name or metadata.generateName is required".into()));
            };
            name = format!("{prefix}{}", random_suffix());
        }
        if !valid_name(&name) {
            return Err(ApiError::Invalid(format!("metadata.name {name:?} is not a valid DNS subdomain")));
        }
        let key = (if rt.namespaced { namespace.to_string() } else { String::new() }, name.clone());
        if self.collection(rt).contains_key(&key) {
            return Err(ApiError::AlreadyExists(format!("{} \"{name}\" already exists", rt.plural)));
        }
        // Status is the controller's to write, through the subresource (namespaces and CRDs excepted, as upstream).
        if rt.status_subresource
            && rt.plural != "namespaces"
            && rt.plural != "customresourcedefinitions"
            && let Some(map) = object.as_object_mut()
        {
            map.remove("status");
        }
        check_schema(rt, &mut object, &name)?;
        if rt.plural == "customresourcedefinitions" {
            // Served at once: names accepted and established, as the real server reports shortly after create.
            object["status"] = json!({
                "acceptedNames": object["spec"]["names"].clone(),
                "storedVersions": object["spec"]["versions"].as_array().into_iter().flatten()
                    .filter(|v| v["storage"] == true).map(|v| v["name"].clone()).collect::<Vec<_>>(),
                "conditions": [
                    {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "lastTransitionTime": now()},
                    {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "lastTransitionTime": now()},
                ],
            });
        }
        let metadata = &mut object["metadata"];
        metadata["name"] = name.into();
        if rt.namespaced {
            metadata["namespace"] = namespace.into();
        }
        metadata["uid"] = uuid::Uuid::new_v4().to_string().into();
        metadata["creationTimestamp"] = now().into();
        metadata["generation"] = 1.into();
        self.stamp(rt, &mut object);
        let shared = Arc::new(object);
        self.collection(rt).insert(key, shared.clone());
        if rt.plural == "customresourcedefinitions" {
            self.install_crd(&shared);
        }
        self.emit(rt, namespace, EventType::Added, shared.clone());
        Ok(Value::clone(&shared))
    }

    fn install_crd(&mut self, crd: &Value) {
        for rt in resources::from_crd(crd) {
            self.types.retain(|t| !(t.group == rt.group && t.version == rt.version && t.plural == rt.plural));
            self.types.push(rt);
        }
    }

    /// Replaces an object (PUT), or its status when `status_only`. A non-empty resourceVersion in `object` must
    /// match the stored one.
    ///
    /// # Errors
    /// NotFound, Conflict, injected faults.
    pub fn update(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        mut object: Value,
        status_only: bool,
    ) -> Result<Value, ApiError> {
        let old = self.get(rt, namespace, name)?;
        self.injected_fault(rt)?;
        if !object.is_object() {
            return Err(ApiError::BadRequest("the body must be an object".into()));
        }
        let given_rv = object["metadata"]["resourceVersion"].as_str().unwrap_or_default();
        if !given_rv.is_empty() && given_rv != old["metadata"]["resourceVersion"].as_str().unwrap_or_default() {
            return Err(ApiError::Conflict(format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your \
                 changes to the latest version and try again",
                rt.plural
            )));
        }
        let body_name = name_of(&object);
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::BadRequest(format!("the name in the body ({body_name}) does not match {name}")));
        }
        if status_only {
            let status = object["status"].take();
            object = old.clone();
            object["status"] = status;
        } else {
            if rt.status_subresource {
                object["status"] = old["status"].clone();
                if object["status"].is_null()
                    && let Some(map) = object.as_object_mut()
                {
                    map.remove("status");
                }
            }
            let old_meta = &old["metadata"];
            let meta = &mut object["metadata"];
            if !meta.is_object() {
                *meta = json!({});
            }
            for key in ["name", "namespace", "uid", "creationTimestamp", "deletionTimestamp", "generation"] {
                match old_meta.get(key) {
                    Some(value) => meta[key] = value.clone(),
                    None => {
                        if let Some(m) = meta.as_object_mut() {
                            m.remove(key);
                        }
                    }
                }
            }
            if spec_part(&object) != spec_part(&old) {
                let generation = old_meta["generation"].as_i64().unwrap_or(1) + 1;
                object["metadata"]["generation"] = generation.into();
            }
        }
        check_schema(rt, &mut object, name)?;
        if rt.plural == "pods" && !status_only {
            check_pod_update(&old, &object, name)?;
        }
        self.commit(rt, namespace, name, object)
    }

    /// Stores a validated new version of an object: a new resourceVersion, the event, and removal when it was
    /// being deleted and has no finalizers left.
    fn commit(&mut self, rt: &ResourceType, namespace: &str, name: &str, mut object: Value) -> Result<Value, ApiError> {
        self.stamp(rt, &mut object);
        let key = (namespace.to_string(), name.to_string());
        let deleting = object["metadata"]["deletionTimestamp"].is_string();
        // A pod in its grace period stays until its kubelet deletes it (grace period 0).
        let grace_left = object["metadata"]["deletionGracePeriodSeconds"].as_i64().unwrap_or(0) > 0;
        let finalizers_left = grace_left || object["metadata"]["finalizers"].as_array().is_some_and(|f| !f.is_empty());
        let shared = Arc::new(object);
        if deleting && !finalizers_left {
            self.collection(rt).remove(&key);
            self.emit(rt, namespace, EventType::Deleted, shared.clone());
            self.collect_garbage(&shared);
            return Ok(Value::clone(&shared));
        }
        self.collection(rt).insert(key, shared.clone());
        if rt.plural == "customresourcedefinitions" {
            self.install_crd(&shared);
        }
        self.emit(rt, namespace, EventType::Modified, shared.clone());
        Ok(Value::clone(&shared))
    }

    /// Binds a pod to `node` (the `binding` subresource; the only way to set `spec.nodeName` on a pod).
    ///
    /// # Errors
    /// NotFound; Conflict when the pod is already bound; Invalid without a node name.
    pub fn bind_pod(&mut self, namespace: &str, name: &str, node: &str) -> Result<Value, ApiError> {
        let rt = self.resolve("", "v1", "pods").ok_or_else(|| ApiError::NotFound("pods".into()))?;
        let mut pod = self.get(&rt, namespace, name)?;
        if node.is_empty() {
            return Err(ApiError::Invalid("target.name: Required value".into()));
        }
        if let Some(bound) = pod["spec"]["nodeName"].as_str() {
            return Err(ApiError::Conflict(format!("pod {name} is already assigned to node \"{bound}\"")));
        }
        pod["spec"]["nodeName"] = node.into();
        self.commit(&rt, namespace, name, pod)
    }

    /// A DELETE request: a pod bound to a node is only marked (deletionTimestamp, grace period) until its
    /// kubelet deletes it with grace period 0, as on a real cluster; everything else goes as in [`Store::delete`].
    ///
    /// # Errors
    /// NotFound, injected faults.
    pub fn delete_requested(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        grace_period: Option<i64>,
    ) -> Result<Value, ApiError> {
        let mut object = self.get(rt, namespace, name)?;
        let bound = object["spec"]["nodeName"].as_str().is_some_and(|n| !n.is_empty());
        if rt.plural != "pods" || !bound || grace_period == Some(0) {
            return self.delete(rt, namespace, name);
        }
        if object["metadata"]["deletionTimestamp"].is_string() {
            return Ok(object);
        }
        self.injected_fault(rt)?;
        let grace = grace_period.or(object["spec"]["terminationGracePeriodSeconds"].as_i64()).unwrap_or(30);
        object["metadata"]["deletionTimestamp"] =
            (Utc::now() + chrono::Duration::seconds(grace)).to_rfc3339_opts(SecondsFormat::Secs, true).into();
        object["metadata"]["deletionGracePeriodSeconds"] = grace.into();
        self.commit(rt, namespace, name, object)
    }

    /// Deletes an object: with finalizers it only gets a deletionTimestamp; without, it goes, and so do the
    /// objects it owns (and, for a namespace, everything in it).
    ///
    /// # Errors
    /// NotFound, injected faults.
    pub fn delete(&mut self, rt: &ResourceType, namespace: &str, name: &str) -> Result<Value, ApiError> {
        let mut object = self.get(rt, namespace, name)?;
        self.injected_fault(rt)?;
        let has_finalizers = object["metadata"]["finalizers"].as_array().is_some_and(|f| !f.is_empty());
        if has_finalizers {
            if object["metadata"]["deletionTimestamp"].is_string() {
                return Ok(object);
            }
            object["metadata"]["deletionTimestamp"] = now().into();
            object["metadata"]["deletionGracePeriodSeconds"] = 0.into();
            self.stamp(rt, &mut object);
            let shared = Arc::new(object);
            self.collection(rt).insert((namespace.into(), name.into()), shared.clone());
            self.emit(rt, namespace, EventType::Modified, shared.clone());
            return Ok(Value::clone(&shared));
        }
        self.collection(rt).remove(&(namespace.to_string(), name.to_string()));
        self.rv += 1;
        object["metadata"]["resourceVersion"] = self.rv.to_string().into();
        self.emit(rt, namespace, EventType::Deleted, Arc::new(object.clone()));
        if rt.plural == "namespaces" {
            self.delete_namespace_contents(name);
        }
        if rt.plural == "customresourcedefinitions" {
            for gone in resources::from_crd(&object) {
                self.types.retain(|t| t.key() != gone.key());
                self.objects.remove(&gone.key());
            }
        }
        self.collect_garbage(&object);
        Ok(object)
    }

    fn delete_namespace_contents(&mut self, namespace: &str) {
        let namespaced: Vec<ResourceType> = self.types.iter().filter(|t| t.namespaced).cloned().collect();
        for rt in namespaced {
            let names: Vec<String> = self
                .objects
                .get(&rt.key())
                .map(|c| c.keys().filter(|(ns, _)| ns == namespace).map(|(_, n)| n.clone()).collect())
                .unwrap_or_default();
            for name in names {
                let _ = self.delete(&rt, namespace, &name);
            }
        }
    }

    /// Background-style garbage collection: objects owned by the removed one are deleted.
    fn collect_garbage(&mut self, removed: &Value) {
        let Some(uid) = removed["metadata"]["uid"].as_str() else { return };
        let mut orphans = Vec::new();
        for rt in &self.types {
            let Some(collection) = self.objects.get(&rt.key()) else { continue };
            for ((ns, name), object) in collection {
                let owned = object["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|refs| refs.iter().any(|r| r["uid"].as_str() == Some(uid)));
                if owned {
                    orphans.push((rt.clone(), ns.clone(), name.clone()));
                }
            }
        }
        orphans.dedup_by(|a, b| a.0.key() == b.0.key() && a.1 == b.1 && a.2 == b.2);
        for (rt, ns, name) in orphans {
            let _ = self.delete(&rt, &ns, &name);
        }
    }

    /// Number of stored objects.
    pub fn len(&self) -> usize {
        self.objects.values().map(BTreeMap::len).sum()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Prunes and validates a custom resource against its schema, as the real server does on every write.
fn check_schema(rt: &ResourceType, object: &mut Value, name: &str) -> Result<(), ApiError> {
    let Some(schema) = &rt.schema else { return Ok(()) };
    schema::prune_and_validate(schema, object).map_err(|errors| {
        let listed = if errors.len() == 1 { errors[0].clone() } else { format!("[{}]", errors.join(", ")) };
        ApiError::Invalid(format!("{}.{} \"{name}\" is invalid: {listed}", rt.kind, rt.group))
    })
}

/// A pod's spec is immutable but for images, `activeDeadlineSeconds` and tolerations; `nodeName` is set only
/// through the `binding` subresource.
fn check_pod_update(old: &Value, new: &Value, name: &str) -> Result<(), ApiError> {
    let mutable_masked = |pod: &Value| {
        let mut spec = pod["spec"].clone();
        for list in ["containers", "initContainers"] {
            for container in spec[list].as_array_mut().into_iter().flatten() {
                container["image"] = Value::Null;
            }
        }
        if let Some(map) = spec.as_object_mut() {
            map.remove("activeDeadlineSeconds");
            map.remove("tolerations");
        }
        spec
    };
    if mutable_masked(old) == mutable_masked(new) {
        return Ok(());
    }
    Err(ApiError::Invalid(format!(
        "Pod \"{name}\" is invalid: spec: Forbidden: pod updates may not change fields other than \
         `spec.containers[*].image`, `spec.initContainers[*].image`, `spec.activeDeadlineSeconds` or \
         `spec.tolerations` (only additions to existing tolerations)"
    )))
}

/// A merge patch of `patch` onto `target` (RFC 7386).
pub fn merge(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// Applies an RFC 6902 JSON patch. As on a real API server, `test` of a missing path against `null` passes
/// (kube-runtime's finalizer helper relies on it).
///
/// # Errors
/// Invalid patches (422).
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), ApiError> {
    let mut operations = patch.as_array().cloned().ok_or(ApiError::BadRequest("a JSON patch is a list".into()))?;
    operations.retain(|op| {
        let missing = op["path"].as_str().is_some_and(|path| target.pointer(path).is_none());
        !(op["op"] == "test" && op["value"].is_null() && missing)
    });
    let patch: json_patch::Patch = serde_json::from_value(Value::Array(operations))
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON patch: {e}")))?;
    json_patch::patch(target, &patch).map_err(|e| ApiError::Invalid(format!("JSON patch failed: {e}")))
}

/// An empty object with metadata, for server-side apply of a missing object.
pub fn empty_object() -> Value {
    Value::Object(Map::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (Store, ResourceType) {
        let store = Store::new(1000);
        let rt = store.resolve("", "v1", "configmaps").unwrap();
        (store, rt)
    }

    #[test]
    fn create_fills_server_fields_and_generate_name() {
        let (mut store, rt) = store();
        let obj = store.create(&rt, "default", json!({"metadata": {"generateName": "cm-"}, "data": {}})).unwrap();
        let name = obj["metadata"]["name"].as_str().unwrap();
        assert!(name.starts_with("cm-") && name.len() == 8, "{name}");
        assert!(obj["metadata"]["uid"].is_string() && obj["metadata"]["creationTimestamp"].is_string());
        assert_eq!((obj["apiVersion"].as_str(), obj["kind"].as_str()), (Some("v1"), Some("ConfigMap")));
        let dup = json!({"metadata": {"name": name}});
        assert!(matches!(store.create(&rt, "default", dup), Err(ApiError::AlreadyExists(_))));
        assert!(matches!(store.create(&rt, "nowhere", json!({"metadata": {"name": "x"}})), Err(ApiError::NotFound(_))));
        assert!(matches!(
            store.create(&rt, "default", json!({"metadata": {"name": "Bad_Name"}})),
            Err(ApiError::Invalid(_))
        ));
    }

    #[test]
    fn stale_updates_conflict_and_generation_follows_the_spec() {
        let (mut store, rt) = store();
        let obj = store.create(&rt, "default", json!({"metadata": {"name": "a"}, "data": {"k": "1"}})).unwrap();
        let mut labelled = obj.clone();
        labelled["metadata"]["labels"] = json!({"x": "y"});
        let labelled = store.update(&rt, "default", "a", labelled, false).unwrap();
        assert_eq!(labelled["metadata"]["generation"], 1, "metadata changes keep the generation");
        let mut changed = labelled.clone();
        changed["data"]["k"] = "2".into();
        assert_eq!(store.update(&rt, "default", "a", changed, false).unwrap()["metadata"]["generation"], 2);
        assert!(matches!(store.update(&rt, "default", "a", obj, false), Err(ApiError::Conflict(_))));
    }

    #[test]
    fn finalizers_hold_deletion_and_owners_take_their_objects_along() {
        let (mut store, rt) = store();
        let owner =
            store.create(&rt, "default", json!({"metadata": {"name": "owner", "finalizers": ["x/y"]}})).unwrap();
        let uid = owner["metadata"]["uid"].clone();
        store
            .create(&rt, "default", json!({"metadata": {"name": "child", "ownerReferences": [{"uid": uid, "name": "owner", "kind": "ConfigMap", "apiVersion": "v1"}]}}))
            .unwrap();
        let marked = store.delete(&rt, "default", "owner").unwrap();
        assert!(marked["metadata"]["deletionTimestamp"].is_string());
        assert!(store.get(&rt, "default", "child").is_ok(), "the owner still exists");
        let mut release = marked.clone();
        release["metadata"]["finalizers"] = json!([]);
        store.update(&rt, "default", "owner", release, false).unwrap();
        assert!(store.get(&rt, "default", "owner").is_err());
        assert!(store.get(&rt, "default", "child").is_err(), "garbage collected");
    }

    #[test]
    fn the_event_log_answers_gone_when_it_no_longer_reaches_back() {
        let mut store = Store::new(3);
        let rt = store.resolve("", "v1", "configmaps").unwrap();
        for i in 0..5 {
            store.create(&rt, "default", json!({"metadata": {"name": format!("c{i}")}})).unwrap();
        }
        assert!(matches!(store.events_since(1), Err(ApiError::Gone(_))));
        assert_eq!(store.events_since(store.resource_version() - 2).unwrap().len(), 2);
    }

    #[test]
    fn status_subresources_separate_spec_from_status() {
        let mut store = Store::new(100);
        let rt = store.resolve("", "v1", "pods").unwrap();
        let pod = store
            .create(
                &rt,
                "default",
                json!({"metadata": {"name": "p"}, "spec": {"containers": []}, "status": {"phase": "Lie"}}),
            )
            .unwrap();
        assert!(pod["status"].is_null(), "status is dropped on create");
        let status = store
            .update(&rt, "default", "p", json!({"status": {"phase": "Running"}, "spec": {"nodeName": "evil"}}), true)
            .unwrap();
        assert_eq!((status["status"]["phase"].as_str(), status["spec"]["nodeName"].as_str()), (Some("Running"), None));
        let mut main = status.clone();
        main["status"]["phase"] = "Failed".into();
        let main = store.update(&rt, "default", "p", main, false).unwrap();
        assert_eq!(main["status"]["phase"], "Running", "the main resource cannot change status");
    }
}
