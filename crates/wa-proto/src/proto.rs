//! Protobuf messages generated from `proto/*.proto` (package `proto`, as in WhatsApp's schema).
//!
//! Every field is `optional` (proto2), so a message re-encodes exactly the fields it was given,
//! including explicit zeros, which byte-exact client payloads need.

#![allow(missing_docs, clippy::all, clippy::pedantic, unused_qualifications)]

include!(concat!(env!("OUT_DIR"), "/proto.rs"));
