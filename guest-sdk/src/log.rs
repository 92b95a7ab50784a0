//! Logging through the host. Messages become `tracing` events of the listener or controller, tagged with the
//! policy and scale set. Natively (in unit tests) they are captured by [`crate::testing`].

pub use crate::wit::shared::logging::Level;

/// Whether the host records messages at `level`; check it before building an expensive message.
pub fn enabled(level: Level) -> bool {
    #[cfg(target_arch = "wasm32")]
    {
        crate::wit::shared::logging::enabled(level)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = level;
        true
    }
}

/// Logs a message with structured fields.
pub fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
    #[cfg(target_arch = "wasm32")]
    {
        let fields: Vec<(String, String)> = fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        crate::wit::shared::logging::log(level, message, &fields);
    }
    #[cfg(not(target_arch = "wasm32"))]
    crate::testing::capture_log(level, message, fields);
}

/// Logs at debug level.
pub fn debug(message: &str) {
    log(Level::Debug, message, &[]);
}

/// Logs at info level.
pub fn info(message: &str) {
    log(Level::Info, message, &[]);
}

/// Logs at warn level.
pub fn warn(message: &str) {
    log(Level::Warn, message, &[]);
}
