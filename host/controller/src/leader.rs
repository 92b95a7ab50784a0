//! Leader election on a `coordination.k8s.io/v1` Lease, for more than one controller replica: acquire (or take
//! over an expired lease), renew every few seconds, and report the loss of leadership.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Client};

use crate::error::{is_status, optional};

/// How long a lease lasts and how often it is renewed.
#[derive(Debug, Clone, Copy)]
pub struct LeaseTiming {
    /// Seconds a lease stays valid without renewal.
    pub lease_seconds: i32,
    /// Renewal period.
    pub renew_every: Duration,
}

impl Default for LeaseTiming {
    /// controller-runtime's defaults: a 15 s lease, renewed well within it.
    fn default() -> Self {
        LeaseTiming { lease_seconds: 15, renew_every: Duration::from_secs(5) }
    }
}

/// A held lease.
pub struct Leadership {
    api: Api<Lease>,
    name: String,
    identity: String,
    timing: LeaseTiming,
}

fn expired(spec: &LeaseSpec, now: Timestamp, default_seconds: i32) -> bool {
    let Some(renewed) = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()) else { return true };
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(default_seconds));
    renewed.0.as_millisecond() + duration * 1000 < now.as_millisecond()
}

impl Leadership {
    /// Waits until this process holds the lease `namespace/name`.
    pub async fn acquire(client: Client, namespace: &str, name: &str, identity: &str, timing: LeaseTiming) -> Self {
        let leadership = Leadership {
            api: Api::namespaced(client, namespace),
            name: name.into(),
            identity: identity.into(),
            timing,
        };
        loop {
            match leadership.try_hold().await {
                Ok(true) => {
                    tracing::info!(lease = name, identity, "became the leader");
                    return leadership;
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(lease = name, error = %e, "leader election failed; retrying"),
            }
            tokio::time::sleep(leadership.timing.renew_every / 2).await;
        }
    }

    /// Takes or renews the lease. Ok(false) = someone else holds a valid lease.
    async fn try_hold(&self) -> kube::Result<bool> {
        let now = Timestamp::now();
        let Some(mut lease) = optional(self.api.get(&self.name).await)? else {
            let lease = Lease {
                metadata: ObjectMeta { name: Some(self.name.clone()), ..Default::default() },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(self.timing.lease_seconds),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(e) if is_status(&e, 409) => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let ours = spec.holder_identity.as_deref() == Some(self.identity.as_str());
        if !ours && !expired(spec, now, self.timing.lease_seconds) {
            return Ok(false);
        }
        if !ours {
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
            spec.acquire_time = Some(MicroTime(now));
            spec.holder_identity = Some(self.identity.clone());
        }
        spec.lease_duration_seconds = Some(self.timing.lease_seconds);
        spec.renew_time = Some(MicroTime(now));
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(e) if is_status(&e, 409) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Renews until the lease is lost (another holder, or no successful renewal within the lease duration).
    pub async fn keep(self) {
        let mut last_renewal = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(self.timing.renew_every).await;
            match self.try_hold().await {
                Ok(true) => last_renewal = tokio::time::Instant::now(),
                Ok(false) => {
                    tracing::error!(lease = %self.name, "leadership lost to another replica");
                    return;
                }
                Err(e) => tracing::warn!(lease = %self.name, error = %e, "lease renewal failed"),
            }
            if last_renewal.elapsed() > Duration::from_secs(self.timing.lease_seconds.max(1) as u64) {
                tracing::error!(lease = %self.name, "lease not renewed in time; leadership lost");
                return;
            }
        }
    }
}
