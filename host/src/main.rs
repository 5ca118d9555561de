//! `unmix`: the desktop side of the unmix kernel.

fn main() {
    println!("unmix {}", env!("CARGO_PKG_VERSION"));
}
