//! Typed policy config.

use serde::de::DeserializeOwned;

use crate::types::PolicyError;

/// Parses the config JSON the host passes to `configure`. Blank text reads as `null`, so a config type that
/// accepts `null` (an `Option`, `()`, or a struct with `#[serde(default)]` wrapped in `Option`) works without config.
///
/// # Errors
/// [`PolicyError::InvalidConfig`] naming the line, column and reason.
pub fn parse_config<C: DeserializeOwned>(json: &str) -> Result<C, PolicyError> {
    let text = if json.trim().is_empty() { "null" } else { json };
    serde_json::from_str(text).map_err(|e| PolicyError::InvalidConfig(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, PartialEq, Default)]
    #[serde(deny_unknown_fields, default)]
    struct Config {
        factor: f64,
    }

    #[test]
    fn blank_config_reads_as_null() {
        assert_eq!(parse_config::<Option<Config>>("  ").unwrap(), None);
    }

    #[test]
    fn unknown_fields_are_reported() {
        let err = parse_config::<Config>(r#"{"factr": 1}"#).unwrap_err();
        assert!(matches!(err, PolicyError::InvalidConfig(ref m) if m.contains("factr")), "{err}");
    }
}
