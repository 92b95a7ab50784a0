//! Client-side rate limiting of Kubernetes requests (ARC's `--k8s-client-rate-limiter-qps/-burst`): a token
//! bucket as a tower layer on the `kube::Client` stack.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

/// A token bucket: `burst` tokens, refilled at `qps` per second.
#[derive(Debug)]
pub struct TokenBucket {
    qps: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    /// A full bucket. `qps <= 0` disables limiting.
    pub fn new(qps: f64, burst: u32) -> Arc<Self> {
        let burst = f64::from(burst.max(1));
        Arc::new(TokenBucket { qps, burst, state: Mutex::new((burst, Instant::now())) })
    }

    /// Waits for a token.
    pub async fn acquire(&self) {
        if self.qps <= 0.0 {
            return;
        }
        loop {
            let wait = {
                let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                let refilled = (state.0 + now.duration_since(state.1).as_secs_f64() * self.qps).min(self.burst);
                *state = (refilled, now);
                if refilled >= 1.0 {
                    state.0 -= 1.0;
                    return;
                }
                Duration::from_secs_f64((1.0 - refilled) / self.qps)
            };
            tokio::time::sleep(wait).await;
        }
    }
}

impl TokenBucket {
    /// Takes a token now, owing it when none is left: how long until the debt is repaid (zero when a token
    /// was there). A disabled bucket never waits.
    pub fn reserve(&self) -> Duration {
        if self.qps <= 0.0 {
            return Duration::ZERO;
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let refilled = (state.0 + now.duration_since(state.1).as_secs_f64() * self.qps).min(self.burst);
        *state = (refilled - 1.0, now);
        Duration::from_secs_f64((1.0 - refilled).max(0.0) / self.qps)
    }
}

/// The layer.
#[derive(Debug, Clone)]
pub struct RateLimitLayer(pub Arc<TokenBucket>);

impl<S> tower::Layer<S> for RateLimitLayer {
    type Service = RateLimited<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimited { inner, bucket: self.0.clone() }
    }
}

/// A service whose requests wait for a token before they are sent.
#[derive(Debug, Clone)]
pub struct RateLimited<S> {
    inner: S,
    bucket: Arc<TokenBucket>,
}

impl<S, R> tower::Service<R> for RateLimited<S>
where
    S: tower::Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let response = self.inner.call(request);
        let bucket = self.bucket.clone();
        Box::pin(async move {
            bucket.acquire().await;
            response.await
        })
    }
}

/// The controller's client for `config` (`User-Agent: gha-autoscaler-controller/…`), limited to `qps` requests
/// per second with bursts of `burst`.
///
/// # Errors
/// The config cannot build a client.
pub fn client(mut config: kube::Config, qps: f64, burst: u32) -> kube::Result<kube::Client> {
    gha_listener::identify(&mut config, "controller");
    let builder = kube::client::ClientBuilder::try_from(config)?;
    Ok(builder.with_layer(&RateLimitLayer(TokenBucket::new(qps, burst))).build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_bucket_allows_its_burst_then_its_rate() {
        let bucket = TokenBucket::new(10.0, 3);
        let start = Instant::now();
        for _ in 0..3 {
            bucket.acquire().await;
        }
        assert!(start.elapsed() < Duration::from_millis(1));
        for _ in 0..10 {
            bucket.acquire().await;
        }
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(990) && elapsed < Duration::from_millis(1100), "{elapsed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn reservations_owe_tokens_beyond_the_burst() {
        let budget = TokenBucket::new(10.0, 2);
        assert_eq!((budget.reserve(), budget.reserve()), (Duration::ZERO, Duration::ZERO));
        let waits: Vec<Duration> = (0..3).map(|_| budget.reserve()).collect();
        let millis: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
        assert_eq!(millis, [100, 200, 300], "each retry beyond the burst waits one more token");
        assert_eq!(TokenBucket::new(0.0, 1).reserve(), Duration::ZERO, "disabled");
    }
}
