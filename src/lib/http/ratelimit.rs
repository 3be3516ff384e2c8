//! The per-address request limit for ordinary API calls (per server instance, in memory).
//!
//! Share creation has its own, stricter limit counted in the database so that it holds across
//! instances (`api::create_share`). Addresses are kept only as keyed hashes.

use std::collections::HashMap;
use std::sync::Mutex;

/// A fixed one-minute window per client.
pub struct RequestLimiter {
    limit: u32,
    windows: Mutex<HashMap<[u8; 16], (i64, u32)>>,
}

impl RequestLimiter {
    pub fn new(limit_per_minute: u32) -> Self {
        Self {
            limit: limit_per_minute,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Count one request; `Err(seconds)` to wait when over the limit.
    pub fn check(&self, client: [u8; 16], now_ms: i64) -> Result<(), u64> {
        let window = now_ms - now_ms.rem_euclid(60_000);
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if windows.len() > 100_000 {
            // Old windows are worthless; dropping them keeps memory bounded under many clients.
            windows.retain(|_, (start, _)| *start == window);
        }
        let entry = windows.entry(client).or_insert((window, 0));
        if entry.0 != window {
            *entry = (window, 0);
        }
        if entry.1 >= self.limit {
            let retry = (window + 60_000 - now_ms).max(1000) / 1000;
            return Err(retry as u64);
        }
        entry.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_client_per_minute() {
        let l = RequestLimiter::new(3);
        for _ in 0..3 {
            assert!(l.check([1; 16], 120_000).is_ok());
        }
        assert_eq!(l.check([1; 16], 125_000), Err(55));
        assert!(
            l.check([2; 16], 125_000).is_ok(),
            "other clients unaffected"
        );
        assert!(l.check([1; 16], 180_000).is_ok(), "next window");
    }
}
