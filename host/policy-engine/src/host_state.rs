//! Per-store host state: the sandbox limiter and the host imports (logging, metrics).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::current::gha_autoscaler::policy::{logging, metrics, types};
use crate::bindings::v0_1::gha_autoscaler::policy as v0_1;
use crate::log_budget::{self, LogBudget, Verdict};
use crate::metrics::PolicyMetrics;

/// Caps linear memory, tables and instance counts, and remembers whether the cap was hit so the host can report
/// a memory limit rather than a generic trap.
pub(crate) struct SandboxLimiter {
    max_memory_bytes: usize,
    /// Largest linear memory seen.
    pub(crate) peak_memory_bytes: usize,
    /// Set when a grow was refused.
    pub(crate) memory_exceeded: bool,
}

impl ResourceLimiter for SandboxLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max_memory_bytes {
            self.memory_exceeded = true;
            wasmtime::bail!("policy memory limit of {} MiB exceeded", self.max_memory_bytes >> 20);
        }
        self.peak_memory_bytes = self.peak_memory_bytes.max(desired);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }

    fn instances(&self) -> usize {
        32
    }

    fn tables(&self) -> usize {
        32
    }

    fn memories(&self) -> usize {
        4
    }
}

/// The data of one policy store.
pub(crate) struct HostState {
    pub(crate) limiter: SandboxLimiter,
    policy: Arc<str>,
    scale_set: Arc<str>,
    metrics: Arc<PolicyMetrics>,
    /// Shared with the instance, so the per-minute budget outlives a rebuilt store.
    pub(crate) log_budget: Arc<Mutex<LogBudget>>,
    /// WASI state, created on first use by policies that were allowed WASI.
    wasi: Option<(WasiCtx, ResourceTable)>,
}

/// WASI for opted-in (JS/Python) policies: the default context grants no files, no environment, no network and
/// no inherited stdio.
impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let (ctx, table) = self.wasi.get_or_insert_with(|| (WasiCtx::builder().build(), ResourceTable::new()));
        WasiCtxView { ctx, table }
    }
}

impl HostState {
    pub(crate) fn new(
        memory_mib: u32,
        policy: Arc<str>,
        scale_set: Arc<str>,
        metrics: Arc<PolicyMetrics>,
        log_budget: Arc<Mutex<LogBudget>>,
    ) -> Self {
        HostState {
            limiter: SandboxLimiter {
                max_memory_bytes: (memory_mib as usize) << 20,
                peak_memory_bytes: 0,
                memory_exceeded: false,
            },
            policy,
            scale_set,
            metrics,
            log_budget,
            wasi: None,
        }
    }

    fn budget(&self) -> std::sync::MutexGuard<'_, LogBudget> {
        self.log_budget.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl types::Host for HostState {}

macro_rules! policy_event {
    ($level:expr, $state:expr, $message:expr, $fields:expr) => {
        tracing::event!(
            target: "gha_policy",
            $level,
            policy = %$state.policy,
            scale_set = %$state.scale_set,
            fields = %$fields,
            "{}",
            $message
        )
    };
}

impl logging::Host for HostState {
    fn enabled(&mut self, level: logging::Level) -> bool {
        if !self.budget().open(Instant::now()) {
            return false;
        }
        match level {
            logging::Level::Trace => tracing::enabled!(target: "gha_policy", tracing::Level::TRACE),
            logging::Level::Debug => tracing::enabled!(target: "gha_policy", tracing::Level::DEBUG),
            logging::Level::Info => tracing::enabled!(target: "gha_policy", tracing::Level::INFO),
            logging::Level::Warn => tracing::enabled!(target: "gha_policy", tracing::Level::WARN),
            logging::Level::Error => tracing::enabled!(target: "gha_policy", tracing::Level::ERROR),
        }
    }

    /// Writes a line within the budget (cut to its caps); drops it, counted, when the budget is spent.
    fn log(&mut self, level: logging::Level, message: String, fields: Vec<(String, String)>) {
        let (message, fields) = log_budget::bounded_line(&message, &fields);
        match self.budget().spend(message.len() + fields.len(), Instant::now()) {
            Verdict::Write => {}
            verdict => {
                self.metrics.record_log_dropped();
                if verdict == Verdict::DropAndWarn {
                    tracing::warn!(
                        target: "gha_policy",
                        policy = %self.policy,
                        scale_set = %self.scale_set,
                        "policy log budget spent; its lines are dropped (and counted) until the next call or minute"
                    );
                }
                return;
            }
        }
        match level {
            logging::Level::Trace => policy_event!(tracing::Level::TRACE, self, message, fields),
            logging::Level::Debug => policy_event!(tracing::Level::DEBUG, self, message, fields),
            logging::Level::Info => policy_event!(tracing::Level::INFO, self, message, fields),
            logging::Level::Warn => policy_event!(tracing::Level::WARN, self, message, fields),
            logging::Level::Error => policy_event!(tracing::Level::ERROR, self, message, fields),
        }
    }
}

impl metrics::Host for HostState {
    fn counter_add(&mut self, name: String, value: u64, labels: Vec<(String, String)>) {
        self.metrics.guest_counter_add(&self.scale_set, &name, value, labels);
    }

    fn gauge_set(&mut self, name: String, value: f64, labels: Vec<(String, String)>) {
        if value.is_finite() {
            self.metrics.guest_gauge_set(&self.scale_set, &name, value, labels);
        }
    }
}

/// WIT 0.1.0's imports are the same functions.
impl v0_1::types::Host for HostState {}

impl v0_1::logging::Host for HostState {
    fn enabled(&mut self, level: v0_1::logging::Level) -> bool {
        logging::Host::enabled(self, current_level(level))
    }

    fn log(&mut self, level: v0_1::logging::Level, message: String, fields: Vec<(String, String)>) {
        logging::Host::log(self, current_level(level), message, fields);
    }
}

fn current_level(level: v0_1::logging::Level) -> logging::Level {
    match level {
        v0_1::logging::Level::Trace => logging::Level::Trace,
        v0_1::logging::Level::Debug => logging::Level::Debug,
        v0_1::logging::Level::Info => logging::Level::Info,
        v0_1::logging::Level::Warn => logging::Level::Warn,
        v0_1::logging::Level::Error => logging::Level::Error,
    }
}

impl v0_1::metrics::Host for HostState {
    fn counter_add(&mut self, name: String, value: u64, labels: Vec<(String, String)>) {
        metrics::Host::counter_add(self, name, value, labels);
    }

    fn gauge_set(&mut self, name: String, value: f64, labels: Vec<(String, String)>) {
        metrics::Host::gauge_set(self, name, value, labels);
    }
}
