//! KMS v2 envelope encryption beside the static `aesgcm` provider (filled in below).

fn main() {}
