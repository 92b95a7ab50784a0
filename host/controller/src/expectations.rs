//! What a controller wrote and its watch caches may not show yet — the "expectations" of Kubernetes
//! controllers: a runner's registration and pod, the runners a runner set created or deleted. A reconcile that
//! finds its cache behind these waits for the watch instead of reading the objects again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// After this long the caches are taken as they are (our write was overwritten, an object deleted behind us).
const PATIENCE: Duration = Duration::from_secs(20);

/// Writes awaited in the caches, by the uid of the object reconciled.
pub struct Expectations<T> {
    by_uid: Mutex<HashMap<String, (T, Instant)>>,
}

impl<T> Default for Expectations<T> {
    fn default() -> Self {
        Expectations { by_uid: Mutex::default() }
    }
}

impl<T: Clone + Default> Expectations<T> {
    /// Records a write to `uid`'s objects: `change` applied to what is awaited already.
    pub fn wrote(&self, uid: &str, change: impl FnOnce(&mut T)) {
        let mut by_uid = self.lock();
        by_uid.retain(|_, (_, at)| at.elapsed() < PATIENCE);
        let (awaited, at) = by_uid.entry(uid.to_string()).or_insert_with(|| (T::default(), Instant::now()));
        change(awaited);
        *at = Instant::now();
    }

    /// What is awaited for `uid`, unless it was written longer than the patience ago.
    pub fn awaited(&self, uid: &str) -> Option<T> {
        self.lock().get(uid).filter(|(_, at)| at.elapsed() < PATIENCE).map(|(awaited, _)| awaited.clone())
    }

    /// The caches show `uid`'s writes (or it is gone): nothing more to wait for.
    pub fn forget(&self, uid: &str) {
        self.lock().remove(uid);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (T, Instant)>> {
        self.by_uid.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_is_awaited_until_forgotten() {
        let expectations: Expectations<Vec<&str>> = Expectations::default();
        assert_eq!(expectations.awaited("a"), None, "nothing written");
        expectations.wrote("a", |names| names.push("x"));
        expectations.wrote("a", |names| names.push("y"));
        assert_eq!(expectations.awaited("a"), Some(vec!["x", "y"]));
        assert_eq!(expectations.awaited("b"), None);
        expectations.forget("a");
        assert_eq!(expectations.awaited("a"), None);
    }
}
