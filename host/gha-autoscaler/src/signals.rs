//! Process signals: SIGTERM (what Kubernetes sends) and Ctrl-C both mean "shut down gracefully".

use std::future::Future;

/// Resolves on SIGTERM or Ctrl-C. The SIGTERM handler is installed at once, so a signal that comes before the
/// future is first polled (while a policy compiles, or a session is waited for) is not lost, nor fatal.
pub fn shutdown() -> impl Future<Output = ()> {
    #[cfg(unix)]
    let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        #[cfg(unix)]
        match terminate {
            Some(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutdown requested");
    }
}
