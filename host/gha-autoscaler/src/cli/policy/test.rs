//! `policy test`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use gha_policy_engine::suite::{TestSuite, run_suite};
use gha_policy_engine::{EngineOptions, PolicyEngine, PolicyMetrics};

/// Run table-driven expectations.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// YAML suites (see `examples/policy-tests/`).
    #[arg(required = true)]
    suites: Vec<PathBuf>,
}

impl TestArgs {
    pub async fn execute(self) -> anyhow::Result<ExitCode> {
        let engine = PolicyEngine::new(EngineOptions::default(), Arc::new(PolicyMetrics::default()))?;
        let (mut passed, mut failed) = (0, 0);
        for path in &self.suites {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            let suite: TestSuite = serde_yaml::from_str(&text)
                .with_context(|| format!("{} is not a policy test suite", path.display()))?;
            let base = path.parent().unwrap_or_else(|| std::path::Path::new("."));
            let results =
                run_suite(&engine, &suite, base).await.with_context(|| format!("loading {}", suite.policy))?;
            for result in results {
                match result.failure {
                    None => {
                        passed += 1;
                        println!("ok     {} :: {}", path.display(), result.name);
                    }
                    Some(why) => {
                        failed += 1;
                        println!("FAILED {} :: {}\n       {why}", path.display(), result.name);
                    }
                }
            }
        }
        println!("{passed} passed, {failed} failed");
        Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
    }
}
