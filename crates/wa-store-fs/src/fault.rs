//! The I/O fault hooks of atomic file replacement: wa-auth's (`wa_auth::fault`) with the test-only
//! `fault-injection` feature, inert otherwise, so no build outside the tests carries them or
//! shows them in its API.

#[cfg(feature = "fault-injection")]
pub(crate) use wa_auth::fault::{Op, check};

#[cfg(not(feature = "fault-injection"))]
pub(crate) use inert::{Op, check};

#[cfg(not(feature = "fault-injection"))]
mod inert {
    /// The operations checked before doing them.
    #[derive(Clone, Copy, Debug)]
    pub(crate) enum Op {
        Write,
        SyncFile,
        Rename,
    }

    /// Never fails: fault injection is not compiled in.
    #[inline(always)]
    pub(crate) fn check(_op: Op, _path: &std::path::Path) -> std::io::Result<()> {
        Ok(())
    }
}
