//! Shared PostgreSQL store for WhatsApp auth state: load-all, write-behind, one owner per account.
//!
//! Not implemented yet: this crate is a placeholder in the workspace layout.
