//! Throughput benchmark (written next).

fn main() {}
