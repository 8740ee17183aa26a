//! Crash-safe binary file store for WhatsApp auth state.
//!
//! Not implemented yet: this crate is a placeholder in the workspace layout.
