//! The per-address request limit for ordinary API calls (per server instance, in memory).
//!
//! Share creation has its own, stricter limit counted in the database so that it holds across
//! instances (`api::create_share`, `store`). Addresses are kept only as keyed hashes.
//!
//! The window slides: a request is allowed when this minute's count plus last minute's, weighted
//! by how much of last minute the sliding window still covers, is under the limit. So a client
//! cannot send its limit at the end of one minute and again at the start of the next.
//!
//! Memory is fixed, whatever the number of clients: counts live in a count-min sketch (four rows
//! of 2^16 counters per minute, 1 MiB in all), indexed by the client's keyed hash. A client's
//! count is the smallest of its four counters, so it is never under-counted; it is over-counted
//! only when all four counters are shared with busy clients, which the secret hash key keeps an
//! attacker from arranging. Each request touches four counters: no scan, no allocation.

use std::sync::{Mutex, PoisonError};

const ROWS: usize = 4;
const COLUMNS: usize = 1 << 16;
const WINDOW_MS: i64 = 60_000;

/// Counts of one minute.
struct Sketch {
    counts: Vec<u16>,
}

impl Sketch {
    fn new() -> Self {
        Self {
            counts: vec![0; ROWS * COLUMNS],
        }
    }

    fn slots(client: &[u8; 16]) -> [usize; ROWS] {
        std::array::from_fn(|row| {
            let column = u16::from_le_bytes([client[2 * row], client[2 * row + 1]]) as usize;
            row * COLUMNS + column
        })
    }

    fn estimate(&self, slots: &[usize; ROWS]) -> u32 {
        slots
            .iter()
            .map(|&s| u32::from(self.counts[s]))
            .min()
            .unwrap_or(0)
    }

    /// Conservative update: only the counters at the minimum grow, which keeps over-counting low.
    fn add(&mut self, slots: &[usize; ROWS]) {
        let min = self.estimate(slots);
        for &s in slots {
            if u32::from(self.counts[s]) == min {
                self.counts[s] = self.counts[s].saturating_add(1);
            }
        }
    }

    fn clear(&mut self) {
        self.counts.fill(0);
    }
}

struct Windows {
    /// Start of the current minute.
    start: i64,
    current: Sketch,
    previous: Sketch,
}

/// A sliding one-minute window per client.
pub struct RequestLimiter {
    limit: u32,
    windows: Mutex<Windows>,
}

impl RequestLimiter {
    pub fn new(limit_per_minute: u32) -> Self {
        Self {
            limit: limit_per_minute,
            windows: Mutex::new(Windows {
                start: 0,
                current: Sketch::new(),
                previous: Sketch::new(),
            }),
        }
    }

    /// Count one request; `Err(seconds)` to wait when over the limit. Refused requests are not
    /// counted, so a client that keeps trying is let in again as its window slides.
    pub fn check(&self, client: [u8; 16], now_ms: i64) -> Result<(), u64> {
        let start = now_ms - now_ms.rem_euclid(WINDOW_MS);
        let mut w = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        if start != w.start {
            if start == w.start + WINDOW_MS {
                let w = &mut *w;
                std::mem::swap(&mut w.current, &mut w.previous);
            } else {
                w.previous.clear();
            }
            w.current.clear();
            w.start = start;
        }
        let slots = Sketch::slots(&client);
        let current = f64::from(w.current.estimate(&slots));
        let previous = f64::from(w.previous.estimate(&slots));
        // The part of last minute the sliding window still covers.
        let overlap = 1.0 - (now_ms - start) as f64 / WINDOW_MS as f64;
        if current + previous * overlap + 1.0 > f64::from(self.limit) {
            // When enough of last minute has slid out, or at the next minute for this minute's own
            // count: at least a second, so the answer is a whole number of seconds.
            let needed = current + previous * overlap + 1.0 - f64::from(self.limit);
            let wait_ms = if previous > 0.0 && needed <= previous * overlap {
                needed / previous * WINDOW_MS as f64
            } else {
                (start + WINDOW_MS - now_ms) as f64
            };
            return Err(((wait_ms / 1000.0).ceil() as u64).max(1));
        }
        w.current.add(&slots);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(n: u8) -> [u8; 16] {
        crate::crypto::hmac_sha256(b"test key", &[n])[..16]
            .try_into()
            .unwrap()
    }

    #[test]
    fn limits_per_client() {
        let l = RequestLimiter::new(3);
        for _ in 0..3 {
            assert!(l.check(client(1), 120_000).is_ok());
        }
        assert_eq!(l.check(client(1), 125_000), Err(55));
        assert!(
            l.check(client(2), 125_000).is_ok(),
            "other clients unaffected"
        );
        assert!(l.check(client(1), 240_000).is_ok(), "two minutes later");
    }

    #[test]
    fn no_doubling_at_a_window_boundary() {
        let l = RequestLimiter::new(10);
        // All ten at the end of one minute...
        for _ in 0..10 {
            assert!(l.check(client(1), 119_000).is_ok());
        }
        // ...and right after the boundary almost none: the window slides.
        let allowed = (0..10)
            .filter(|_| l.check(client(1), 121_000).is_ok())
            .count();
        assert_eq!(allowed, 0, "a fixed window would allow 10 more here");
        // Half-way into the next minute, half of last minute has slid out.
        let allowed = (0..10)
            .filter(|_| l.check(client(1), 150_000).is_ok())
            .count();
        assert_eq!(allowed, 5);
        // In any 60 s no more than the limit (plus the sketch's rounding) got through.
    }

    #[test]
    fn many_clients_fixed_memory_and_few_false_refusals() {
        let l = RequestLimiter::new(100);
        // 200,000 clients with 5 requests each: nobody is near the limit.
        let mut refused = 0;
        for n in 0..200_000u32 {
            let c: [u8; 16] = crate::crypto::hmac_sha256(b"k", &n.to_le_bytes())[..16]
                .try_into()
                .unwrap();
            for _ in 0..5 {
                refused += usize::from(l.check(c, 60_000 + i64::from(n % 50_000)).is_err());
            }
        }
        assert_eq!(refused, 0);
        // And the busy one is still caught.
        let busy = client(9);
        let allowed = (0..200).filter(|_| l.check(busy, 110_000).is_ok()).count();
        assert!(allowed <= 100, "{allowed}");
    }
}
