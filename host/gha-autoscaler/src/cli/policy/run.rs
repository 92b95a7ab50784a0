//! `policy run`.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use gha_policy_engine::types::{ScaleDownInput, ScaleInput, ScaleSetRef};
use gha_policy_engine::{Replayer, ScaleSetPolicy};

use super::PolicyOptions;

/// Which hook the inputs are for.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum HookArg {
    /// ScaleInput lines; previous decision and state flow from line to line as in the listener.
    Decide,
    /// ScaleDownInput lines.
    Select,
    /// `{"runner": NAME, "template": POD_TEMPLATE}` lines: the template after the policy's patch, as the controller
    /// would create the pod under `--permissions`.
    Mutate,
}

/// A `mutate` input line.
#[derive(Debug, serde::Deserialize)]
struct MutateInput {
    #[serde(default)]
    runner: String,
    template: serde_json::Value,
}

/// Feed recorded inputs to a policy.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    policy: PolicyOptions,
    /// JSON lines of inputs (camelCase fields; `-` for stdin).
    #[arg(long, default_value = "-")]
    input: PathBuf,
    /// The hook to call.
    #[arg(long, value_enum, default_value_t = HookArg::Decide)]
    hook: HookArg,
}

impl RunArgs {
    pub async fn execute(self) -> anyhow::Result<ExitCode> {
        let engine = self.policy.engine()?;
        let policy = ScaleSetPolicy::load(&engine, ScaleSetRef::default(), self.policy.spec()?).await?;
        let reader: Box<dyn BufRead> = if self.input.as_os_str() == "-" {
            Box::new(std::io::stdin().lock())
        } else {
            let file = std::fs::File::open(&self.input).with_context(|| format!("opening {}", self.input.display()))?;
            Box::new(std::io::BufReader::new(file))
        };
        let mut replay = Replayer::new(&policy);
        let mut out = std::io::stdout().lock();
        for (n, line) in reader.lines().enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let context = || format!("input line {}", n + 1);
            let output = match self.hook {
                HookArg::Decide => {
                    let (input, recorded) = decide_input(&line).with_context(context)?;
                    let decided = replay.step(input).with_context(context)?;
                    let mut value = serde_json::to_value(&decided.value)?;
                    value["outcome"] = decided.outcome.label().into();
                    value["adjustments"] = serde_json::to_value(&decided.adjustments)?;
                    if let Some(recorded) = recorded {
                        value["recorded"] = recorded;
                    }
                    value
                }
                HookArg::Select => {
                    let input: ScaleDownInput = serde_json::from_str(&line).with_context(context)?;
                    let decided = policy.select(&input).with_context(context)?;
                    serde_json::json!({"selected": decided.value, "outcome": decided.outcome.label(), "adjustments": decided.adjustments})
                }
                HookArg::Mutate => {
                    let input: MutateInput = serde_json::from_str(&line).with_context(context)?;
                    let decided = policy.mutate_runner_pod(&input.runner, &input.template).with_context(context)?;
                    let error = match &decided.outcome {
                        gha_policy_engine::Outcome::Fallback { error } => Some(error.clone()),
                        _ => None,
                    };
                    serde_json::json!({"template": decided.value, "outcome": decided.outcome.label(), "error": error})
                }
            };
            writeln!(out, "{output}")?;
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// A `decide` input line: a bare ScaleInput, or a decision-log record (from the listener or `simulate`) whose
/// `input` is replayed with this policy's own previous decision and state (what-if on real history) and whose
/// recorded `output` is echoed as `recorded` for comparison.
fn decide_input(line: &str) -> anyhow::Result<(ScaleInput, Option<serde_json::Value>)> {
    let value: serde_json::Value = serde_json::from_str(line)?;
    if value.get("input").is_none() {
        return Ok((serde_json::from_value(value)?, None));
    }
    let record: gha_policy_engine::DecisionRecord = serde_json::from_value(value)?;
    let mut input = record.input;
    input.previous = None;
    input.state.clear();
    Ok((input, Some(serde_json::to_value(record.output)?)))
}
