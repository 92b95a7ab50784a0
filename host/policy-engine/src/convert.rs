//! Conversions between our plain types and the wasmtime bindings of each WIT version, generated from one
//! definition shared with the guest SDK.

/// For the current WIT.
pub(crate) mod current {
    gha_autoscaler_policy_types::wit_conversions!(crate::bindings::current::gha_autoscaler::policy::types);
}

/// For WIT 0.1.0: its `scale-input` has no event list and its `job-event` only the fields 0.1.0 had.
pub(crate) mod v0_1 {
    gha_autoscaler_policy_types::wit_conversions!(crate::bindings::v0_1::gha_autoscaler::policy::types, v0_1);

    use crate::bindings::v0_1::gha_autoscaler::policy::types as w;
    use crate::types as t;
    use wit_convert::Convert;

    impl Convert<w::ScaleInput> for t::ScaleInput {
        fn convert(self) -> w::ScaleInput {
            w::ScaleInput {
                now_unix_ms: self.now_unix_ms,
                statistics: self.statistics.convert(),
                runners: self.runners.convert(),
                bounds: self.bounds.convert(),
                previous: self.previous.convert(),
                job_events_since_previous: self.job_events_since_previous,
                state: self.state,
                attributes: self.attributes,
            }
        }
    }

    /// 0.1.0 only knows started and completed jobs; the host passes it nothing else.
    impl Convert<w::JobEvent> for t::JobEvent {
        fn convert(self) -> w::JobEvent {
            w::JobEvent {
                phase: match self.phase {
                    t::JobPhase::Completed => w::JobPhase::Completed,
                    t::JobPhase::Available | t::JobPhase::Assigned | t::JobPhase::Started => w::JobPhase::Started,
                },
                runner_name: self.runner_name,
                repository: self.repository,
                workflow_ref: self.workflow_ref,
                job_display_name: self.job_display_name,
                conclusion: self.conclusion,
                attributes: self.attributes,
            }
        }
    }
}
