//! Accuracy and time of `unmix::svd` against nalgebra's SVD on the same matrices.
//! Run with `cargo bench -p unmix --bench svd`; a full version follows.

fn main() {}
