//! Generates the KMS v2 plugin API (gRPC) from `proto/v2/api.proto` when the `kms-plugin`
//! feature is on, with `protox` (a protobuf compiler in Rust: no `protoc` needed).

fn main() {
    #[cfg(feature = "kms-plugin")]
    generate();
}

#[cfg(feature = "kms-plugin")]
fn generate() {
    const PROTO: &str = "proto/v2/api.proto";
    println!("cargo:rerun-if-changed={PROTO}");
    let descriptors = match protox::compile([PROTO], ["proto"]) {
        Ok(d) => d,
        Err(e) => panic!("cannot compile {PROTO}: {e}"),
    };
    if let Err(e) = tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)
    {
        panic!("cannot generate the gRPC code of {PROTO}: {e}");
    }
}
