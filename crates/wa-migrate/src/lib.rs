//! Staged, verified migration of WhatsApp auth state between storage backends.
//!
//! Not implemented yet: this crate is a placeholder in the workspace layout.
