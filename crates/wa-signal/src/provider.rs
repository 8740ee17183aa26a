//! Time and randomness, supplied by the caller.
//!
//! wa-signal never reads the system clock or the operating system's random source itself (as
//! rustls takes its time provider from the caller): key generation and signing take a random
//! generator, and the protocol operations that also need the time (session setup, 1:1 and
//! group encryption and decryption) take a [`Provider`] — a cryptographically secure random
//! generator with a clock. A program passes one backed by the OS (wa-auth's `SystemProvider`);
//! a test passes a seeded one with a fixed clock and gets the same keys on every run.
//!
//! ```
//! use std::convert::Infallible;
//! use rand::rngs::StdRng;
//! use rand::{SeedableRng, TryCryptoRng, TryRng};
//! use wa_signal::provider::{Provider, UnixTime};
//!
//! /// A provider for a simulation: a seeded generator and a clock the test moves by hand.
//! struct Simulated { rng: StdRng, now: UnixTime }
//!
//! impl TryRng for Simulated {
//!     type Error = Infallible;
//!     fn try_next_u32(&mut self) -> Result<u32, Infallible> { self.rng.try_next_u32() }
//!     fn try_next_u64(&mut self) -> Result<u64, Infallible> { self.rng.try_next_u64() }
//!     fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
//!         self.rng.try_fill_bytes(dst)
//!     }
//! }
//! impl TryCryptoRng for Simulated {}
//! impl Provider for Simulated {
//!     fn now(&self) -> UnixTime { self.now }
//! }
//!
//! let mut provider = Simulated { rng: StdRng::seed_from_u64(7), now: UnixTime::from_secs(1) };
//! let key = wa_signal::KeyPair::generate(&mut provider); // a provider is a random generator
//! assert_eq!(provider.now().as_millis(), 1000);
//! # let _ = key;
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use rand::CryptoRng;

/// Where an operation gets its randomness and the current time: a cryptographically secure
/// random generator (the supertrait) with a clock. Every provider can be passed where only a
/// random generator is asked for.
///
/// Implement [`rand::TryRng`] (with `Error = Infallible`), the [`rand::TryCryptoRng`] marker
/// and [`Provider::now`]; see the [module docs](self) for an example.
pub trait Provider: CryptoRng {
    /// The current time.
    fn now(&self) -> UnixTime;
}

impl<P: Provider + ?Sized> Provider for &mut P {
    fn now(&self) -> UnixTime {
        (**self).now()
    }
}

/// A point in time as milliseconds since the Unix epoch (1970-01-01T00:00:00Z): the time of
/// certificate checks (whole seconds) and of session records (milliseconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixTime(u64);

impl UnixTime {
    /// `secs` seconds after the epoch (saturating at the largest representable time).
    pub const fn from_secs(secs: u64) -> Self {
        Self(secs.saturating_mul(1000))
    }

    /// `millis` milliseconds after the epoch.
    pub const fn from_millis(millis: u64) -> Self {
        Self(millis)
    }

    /// Whole seconds since the epoch.
    pub const fn as_secs(self) -> u64 {
        self.0 / 1000
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// This time moved `by` forward (saturating).
    #[must_use]
    pub fn saturating_add(self, by: Duration) -> Self {
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        Self(self.0.saturating_add(by))
    }
}

impl From<SystemTime> for UnixTime {
    /// The time of a `SystemTime`; a time before the epoch is the epoch.
    fn from(time: SystemTime) -> Self {
        let millis = time
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Self(millis)
    }
}

#[cfg(any(test, feature = "test-util"))]
pub use test_provider::TestProvider;

#[cfg(any(test, feature = "test-util"))]
mod test_provider {
    use std::convert::Infallible;
    use std::time::Duration;

    use rand::rngs::StdRng;
    use rand::{SeedableRng, TryCryptoRng, TryRng};

    use super::{Provider, UnixTime};

    /// A deterministic provider for tests (feature `test-util`): a generator seeded from a
    /// number and a clock that moves only when the test moves it. The same seed gives the same
    /// keys, ratchets and signatures on every run (of the same build).
    #[derive(Debug)]
    pub struct TestProvider {
        rng: StdRng,
        now: UnixTime,
    }

    impl TestProvider {
        /// The time a new test provider starts at: 2025-06-15T15:06:40Z.
        pub const START: UnixTime = UnixTime::from_secs(1_750_000_000);

        /// A provider seeded with `seed`, its clock at [`TestProvider::START`].
        pub fn new(seed: u64) -> Self {
            Self {
                rng: StdRng::seed_from_u64(seed),
                now: Self::START,
            }
        }

        /// The same, with the clock at `now`.
        #[must_use]
        pub fn at(mut self, now: UnixTime) -> Self {
            self.now = now;
            self
        }

        /// Sets the clock.
        pub fn set_now(&mut self, now: UnixTime) {
            self.now = now;
        }

        /// Moves the clock forward.
        pub fn advance(&mut self, by: Duration) {
            self.now = self.now.saturating_add(by);
        }
    }

    impl TryRng for TestProvider {
        type Error = Infallible;

        fn try_next_u32(&mut self) -> Result<u32, Infallible> {
            self.rng.try_next_u32()
        }

        fn try_next_u64(&mut self) -> Result<u64, Infallible> {
            self.rng.try_next_u64()
        }

        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
            self.rng.try_fill_bytes(dst)
        }
    }

    impl TryCryptoRng for TestProvider {}

    impl Provider for TestProvider {
        fn now(&self) -> UnixTime {
            self.now
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::curve::KeyPair;

    #[test]
    fn unix_time_keeps_milliseconds_and_whole_seconds() {
        let t = UnixTime::from_millis(1_750_000_000_999);
        assert_eq!(
            (t.as_secs(), t.as_millis()),
            (1_750_000_000, 1_750_000_000_999)
        );
        assert_eq!(UnixTime::from_secs(2).as_millis(), 2000);
        assert_eq!(UnixTime::from_secs(u64::MAX).as_millis(), u64::MAX);
        assert_eq!(
            UnixTime::from(UNIX_EPOCH - Duration::from_secs(1)),
            UnixTime::from_secs(0)
        );
        assert_eq!(
            UnixTime::from(UNIX_EPOCH + Duration::from_millis(1500)),
            UnixTime::from_millis(1500)
        );
        assert_eq!(
            t.saturating_add(Duration::from_millis(1)),
            UnixTime::from_secs(1_750_000_001)
        );
    }

    #[test]
    fn a_test_provider_is_deterministic() {
        let (mut a, mut b) = (TestProvider::new(3), TestProvider::new(3));
        assert_eq!(KeyPair::generate(&mut a), KeyPair::generate(&mut b));
        assert_ne!(
            KeyPair::generate(&mut a),
            KeyPair::generate(&mut TestProvider::new(4))
        );
        a.advance(Duration::from_secs(5));
        assert_eq!(
            a.now(),
            TestProvider::START.saturating_add(Duration::from_secs(5))
        );
        assert_eq!(b.now(), TestProvider::START);
    }
}
