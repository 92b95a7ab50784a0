//! `--policy-config` values shared by `demo` and `simulate`: `JSON` for every policy or `NAME=JSON` for one.

use anyhow::Context;
use serde_json::Value;

/// Parsed `--policy-config` values; later ones win.
pub struct PolicyConfigs(Vec<(Option<String>, Value)>);

impl PolicyConfigs {
    /// Parses the values.
    pub fn parse(values: &[String]) -> anyhow::Result<Self> {
        let mut configs = Vec::new();
        for text in values {
            let (name, json) = if text.trim_start().starts_with('{') {
                (None, text.as_str())
            } else {
                let (name, json) = text.split_once('=').context("--policy-config is JSON or NAME=JSON")?;
                (Some(name.to_string()), json)
            };
            let value = serde_json::from_str(json).with_context(|| format!("--policy-config {text:?} is not JSON"))?;
            configs.push((name, value));
        }
        Ok(PolicyConfigs(configs))
    }

    /// The config of `policy`, if any.
    pub fn get(&self, policy: &str) -> Option<Value> {
        self.0.iter().rev().find(|(name, _)| name.as_deref().is_none_or(|n| n == policy)).map(|(_, c)| c.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_configs_win_over_global_ones_in_order() {
        let configs = PolicyConfigs::parse(&[r#"{"a": 1}"#.into(), r#"warm-pool={"b": 2}"#.into()]).unwrap();
        assert_eq!(configs.get("warm-pool"), Some(serde_json::json!({"b": 2})));
        assert_eq!(configs.get("arc-default"), Some(serde_json::json!({"a": 1})));
        assert!(PolicyConfigs::parse(&["nonsense".into()]).is_err());
    }
}
