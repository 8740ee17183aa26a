//! The I/O fault hooks of the file stores (atomic replacement here, the native store's log):
//! wa-auth's (`wa_auth::fault`) with the test-only `fault-injection` feature, inert otherwise,
//! so no build outside the tests carries them. Hidden from the docs: plumbing, not API.

#[cfg(feature = "fault-injection")]
pub use wa_auth::fault::{Op, check};

#[cfg(not(feature = "fault-injection"))]
pub use inert::{Op, check};

#[cfg(not(feature = "fault-injection"))]
mod inert {
    /// The operations checked before doing them.
    #[allow(missing_docs)]
    #[derive(Clone, Copy, Debug)]
    pub enum Op {
        Write,
        SyncFile,
        Truncate,
        Rename,
    }

    /// Never fails: fault injection is not compiled in.
    #[inline(always)]
    pub fn check(_op: Op, _path: &std::path::Path) -> std::io::Result<()> {
        Ok(())
    }
}
