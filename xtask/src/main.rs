//! `cargo xtask`: the project command line.
fn main() {}
