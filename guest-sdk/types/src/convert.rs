//! [`wit_conversions!`]: conversions between these types and any binding generator's types for the same WIT
//! (wit-bindgen in the guest SDK, wasmtime's bindgen in the host), written once.

/// Defines, in the invoking crate, a `Convert<T>` trait with impls in both directions between this crate's types
/// and the generated ones at `$w` (a path to the generated `types` interface module). Field names match because
/// both generators follow the WIT.
///
/// `wit_conversions!($w, v0_1)` is for bindings of the frozen 0.1.0 WIT, whose `scale-input`, `job-event` and
/// `job-phase` lack what 0.2.0 added (and which has no `job-events`): it leaves those out, for the invoking crate
/// to write what it needs.
#[macro_export]
macro_rules! wit_conversions {
    ($w:path) => {
        $crate::wit_conversions!(@module $w, {
            $crate::__wit_record!(ScaleInput {
                now_unix_ms, statistics, runners, bounds, previous, job_events_since_previous, job_events,
                job_events_dropped, state, attributes,
            });
            $crate::__wit_enum!(JobPhase { Available, Assigned, Started, Completed });
            $crate::__wit_record!(JobEvent {
                phase, job_id, runner_name, repository, workflow_ref, workflow_run_id, job_display_name, event_name,
                labels, queued_unix_ms, started_unix_ms, finished_unix_ms, conclusion, attributes,
            });
            // Columns of integers and strings move as they are: converting them element by element costs a
            // guest tens of microseconds per decision at the event bound.
            $crate::__wit_record!(JobEvents { phases } moved {
                strings, label_sets, job_ids, workflow_run_ids, repositories, workflow_refs, job_display_names,
                event_names, labels, queued_unix_ms, started_unix_ms, finished_unix_ms, conclusions,
            });
        });
    };
    ($w:path, v0_1) => {
        $crate::wit_conversions!(@module $w, {});
    };
    (@module $w:path, { $($version_specific:tt)* }) => {
        /// Conversions between the plain types and the generated bindings.
        #[allow(dead_code, reason = "each side of the sandbox uses the directions it needs")]
        pub(crate) mod wit_convert {
            use $w as w;
            use $crate as t;

            /// Converts a value into its counterpart on the other side of the bindings.
            pub(crate) trait Convert<T> {
                /// The conversion.
                fn convert(self) -> T;
            }

            $crate::__wit_same!(u8, u32, u64, bool, String, (String, String));

            impl<A: Convert<B>, B> Convert<Option<B>> for Option<A> {
                fn convert(self) -> Option<B> {
                    self.map(Convert::convert)
                }
            }

            impl<A: Convert<B>, B> Convert<Vec<B>> for Vec<A> {
                fn convert(self) -> Vec<B> {
                    self.into_iter().map(Convert::convert).collect()
                }
            }

            $crate::__wit_record!(ScaleSetRef { namespace, name, id, runner_group, attributes });
            $crate::__wit_record!(JobStatistics {
                available_jobs, acquired_jobs, assigned_jobs, running_jobs, registered_runners, busy_runners,
                idle_runners,
            });
            $crate::__wit_record!(RunnerCounts { current, pending, running, failed });
            $crate::__wit_record!(Bounds { min_runners, max_runners });
            $crate::__wit_record!(PreviousDecision { desired_runners, min_runners, max_capacity, drain, decided_unix_ms });
            $crate::__wit_record!(ScaleDecision {
                desired_runners, max_capacity, min_runners, drain, requeue_after_ms, reason, state, attributes,
            });
            $crate::__wit_enum!(RunnerPhase { Pending, Running });
            $crate::__wit_record!(RunnerInfo { name, phase, created_unix_ms, idle_since_unix_ms, node_name, attributes });
            $crate::__wit_record!(ScaleDownInput { now_unix_ms, surplus, candidates, attributes });
            $crate::__wit_record!(PodMetadata { labels, annotations });
            $crate::__wit_record!(PolicyInfo { name, version, sdk_version });
            $crate::__wit_enum!(PolicyError { InvalidConfig(message), InvalidInput(message), Internal(message) });
            $($version_specific)*
        }
    };
}

/// Identity conversions (used by [`wit_conversions!`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __wit_same {
    ($($ty:ty),*) => {$(
        impl Convert<$ty> for $ty {
            fn convert(self) -> $ty {
                self
            }
        }
    )*};
}

/// Field-by-field record conversions in both directions (used by [`wit_conversions!`]); fields listed after
/// `moved` have the same type on both sides and are moved, not converted.
#[doc(hidden)]
#[macro_export]
macro_rules! __wit_record {
    ($name:ident { $($field:ident),* $(,)? }) => {
        $crate::__wit_record!($name { $($field),* } moved {});
    };
    ($name:ident { $($field:ident),* $(,)? } moved { $($same:ident),* $(,)? }) => {
        impl Convert<w::$name> for t::$name {
            fn convert(self) -> w::$name {
                w::$name { $($field: self.$field.convert(),)* $($same: self.$same,)* }
            }
        }
        impl Convert<t::$name> for w::$name {
            fn convert(self) -> t::$name {
                t::$name { $($field: self.$field.convert(),)* $($same: self.$same,)* }
            }
        }
    };
}

/// Case-by-case enum and variant conversions in both directions (used by [`wit_conversions!`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __wit_enum {
    ($name:ident { $($case:ident $(($payload:ident))?),* $(,)? }) => {
        impl Convert<w::$name> for t::$name {
            fn convert(self) -> w::$name {
                match self { $(t::$name::$case $(($payload))? => w::$name::$case $(($payload))?),* }
            }
        }
        impl Convert<t::$name> for w::$name {
            fn convert(self) -> t::$name {
                match self { $(w::$name::$case $(($payload))? => t::$name::$case $(($payload))?),* }
            }
        }
    };
}
