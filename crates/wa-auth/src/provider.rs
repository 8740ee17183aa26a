//! [`SystemProvider`]: the one place wa-auth (and the crates above it) take time and randomness
//! from the machine, to hand them to wa-signal, which reads neither itself.

use std::convert::Infallible;
use std::time::SystemTime;

use rand::rngs::SysRng;
use rand::{TryCryptoRng, TryRng};
use wa_signal::{Provider, UnixTime};

/// The default [`Provider`]: the operating system's random source (`getrandom`) and the system
/// clock. Stateless and `Send`, so it can be created wherever an operation needs one.
///
/// It panics if the operating system cannot supply random bytes (as `rand::rng()` does); key
/// material is never made from anything weaker.
///
/// ```
/// use wa_auth::SystemProvider;
/// use wa_signal::{KeyPair, Provider};
///
/// let mut provider = SystemProvider::new();
/// let key = KeyPair::generate(&mut provider); // a provider is a random generator
/// assert!(provider.now().as_secs() > 1_700_000_000);
/// # let _ = key;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SystemProvider {
    _private: (),
}

impl SystemProvider {
    /// The provider.
    pub const fn new() -> Self {
        Self { _private: () }
    }
}

fn os_random<T>(result: Result<T, rand::rngs::SysError>) -> Result<T, Infallible> {
    Ok(result.unwrap_or_else(|e| panic!("the operating system's random source failed: {e}")))
}

impl TryRng for SystemProvider {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        os_random(SysRng.try_next_u32())
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        os_random(SysRng.try_next_u64())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        os_random(SysRng.try_fill_bytes(dst))
    }
}

impl TryCryptoRng for SystemProvider {}

impl Provider for SystemProvider {
    fn now(&self) -> UnixTime {
        UnixTime::from(SystemTime::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn draws_fresh_bytes_and_reads_the_clock() {
        let mut provider = SystemProvider::new();
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        provider.fill_bytes(&mut a);
        provider.fill_bytes(&mut b);
        assert_ne!(a, b);
        let before = UnixTime::from(SystemTime::now());
        let now = provider.now();
        assert!(now >= before && now <= UnixTime::from(SystemTime::now()));
    }
}
