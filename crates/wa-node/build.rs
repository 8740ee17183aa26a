//! Link arguments for a Node-API addon (Node resolves the napi symbols when it loads it).

fn main() {
    napi_build::setup();
}
