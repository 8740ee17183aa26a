//! Compiles the project's own `.proto` files with a pure-Rust protobuf compiler (protox), so a
//! build never needs a system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/signal.proto",
        "proto/adv.proto",
        "proto/noise.proto",
        "proto/client_payload.proto",
        "proto/app_state.proto",
    ];
    for file in &files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
