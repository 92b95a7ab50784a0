//! Conversions between our plain types and the wasmtime bindings, generated from one definition shared with the
//! guest SDK.

gha_autoscaler_policy_types::wit_conversions!(crate::bindings::types);

pub(crate) use wit_convert::Convert;
