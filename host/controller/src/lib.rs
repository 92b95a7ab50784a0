//! The controllers' logic. So far: the EphemeralRunnerSet scaling plan (ARC's patchID rules), as a pure function
//! the EphemeralRunnerSet controller will act on.
#![deny(missing_docs)]

pub mod runner_set_plan;
