//! `--policy-config` values shared by `demo` and `simulate`: `JSON` for every policy or `NAME=JSON` for one, NAME
//! being the `--policy` argument or the label the report prints for it (its file name, with or without `.wasm`).

use anyhow::Context;
use serde_json::Value;

/// Parsed `--policy-config` values; later ones win.
pub struct PolicyConfigs(Vec<(Option<String>, Value)>);

/// Whether `name` designates the policy given as `argument`.
fn designates(name: &str, argument: &str) -> bool {
    let file = argument.rsplit('/').next().unwrap_or(argument);
    name == argument || name == file || name == file.trim_end_matches(".wasm")
}

impl PolicyConfigs {
    /// Parses the values for the policies run.
    ///
    /// # Errors
    /// A value that is not JSON, or a NAME that designates none of `policies` (it would be silently ignored).
    pub fn parse(values: &[String], policies: &[String]) -> anyhow::Result<Self> {
        let mut configs = Vec::new();
        for text in values {
            let (name, json) = if text.trim_start().starts_with('{') {
                (None, text.as_str())
            } else {
                let (name, json) = text.split_once('=').context("--policy-config is JSON or NAME=JSON")?;
                if !policies.iter().any(|p| designates(name, p)) {
                    anyhow::bail!(
                        "--policy-config {name}=…: {name:?} is none of the policies run ({})",
                        policies.join(", ")
                    );
                }
                (Some(name.to_string()), json)
            };
            let value = serde_json::from_str(json).with_context(|| format!("--policy-config {text:?} is not JSON"))?;
            configs.push((name, value));
        }
        Ok(PolicyConfigs(configs))
    }

    /// The config of the policy given as `argument`, if any.
    pub fn get(&self, argument: &str) -> Option<Value> {
        self.0
            .iter()
            .rev()
            .find(|(name, _)| name.as_deref().is_none_or(|n| designates(n, argument)))
            .map(|(_, c)| c.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_configs_win_over_global_ones_in_order() {
        let policies = ["warm-pool".to_string(), "arc-default".to_string()];
        let configs = PolicyConfigs::parse(&[r#"{"a": 1}"#.into(), r#"warm-pool={"b": 2}"#.into()], &policies).unwrap();
        assert_eq!(configs.get("warm-pool"), Some(serde_json::json!({"b": 2})));
        assert_eq!(configs.get("arc-default"), Some(serde_json::json!({"a": 1})));
        assert!(PolicyConfigs::parse(&["nonsense".into()], &policies).is_err());
    }

    #[test]
    fn a_file_policy_answers_to_its_label_and_an_unknown_name_is_an_error() {
        let policies = ["./target/policies/my-policy.wasm".to_string()];
        for name in ["my-policy", "my-policy.wasm", "./target/policies/my-policy.wasm"] {
            let configs = PolicyConfigs::parse(&[format!(r#"{name}={{"x": 1}}"#)], &policies).unwrap();
            assert_eq!(configs.get(&policies[0]), Some(serde_json::json!({"x": 1})), "{name}");
        }
        let err = PolicyConfigs::parse(&[r#"warm-pool={"x": 1}"#.into()], &policies).err().unwrap();
        assert!(err.to_string().contains("none of the policies"), "{err}");
    }
}
