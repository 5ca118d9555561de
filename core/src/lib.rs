//! `unmix`: turn a detector spectrum into phase fractions, the same bits on every target.
//!
//! The crate is `no_std`, allocates nothing and keeps the per-spectrum path free of panics.
//! Every floating-point operation is an IEEE basic operation (`+ - * / sqrt`) or a `libm`
//! function in a fixed order, so a given input gives the same `f32` bits on x86_64,
//! Cortex-M4F (hardware FPU), Cortex-M0 (soft float) and RISC-V.

#![no_std]

pub mod pass;
