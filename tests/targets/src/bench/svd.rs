//! The second baseline: least squares through nalgebra's SVD of the full `n x k` library.
//!
//! This is what a general-purpose linear-algebra crate offers for one spectrum: copy the
//! library into a heap matrix, take its thin SVD `X = U S V^T` (nalgebra bidiagonalizes by
//! Householder reflections and then runs implicit-shift QR on the bidiagonal), and solve
//! `x = V S^+ U^T y`, singular values below `n * eps * s_max` treated as zero. The answer is
//! the unconstrained least-squares solution, so the benchmark compares it with the kernel's
//! `Lstsq` fit. It needs a heap: the benchmark binary has one (`embedded-alloc`), used by this
//! baseline only; the kernel and the firmware stay heap-free.

use alloc::vec::Vec;
use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering};

use nalgebra::{DMatrix, DVector};

/// Solves `min ||X x - y||` for the channel-major `library` (`n x k`) into `x` (`k` values).
/// Returns `false` when nalgebra reports a failure (it did not converge).
pub fn solve(library: &[f32], n: usize, k: usize, y: &[f32], x: &mut [f32]) -> bool {
    let matrix = DMatrix::from_row_slice(n, k, &library[..n * k]);
    let rhs = DVector::from_column_slice(&y[..n]);

    let svd = matrix.svd(true, true);
    let largest = svd.singular_values.iter().fold(0.0f32, |m, v| m.max(*v));
    let eps = n as f32 * f32::EPSILON * largest;
    match svd.solve(&rhs, eps) {
        Ok(solution) => {
            let values: Vec<f32> = solution.iter().copied().collect();
            x[..k].copy_from_slice(&values[..k]);
            true
        }
        Err(_) => false,
    }
}

/// Singular values of the channel-major `library` (`n x k`) by nalgebra (bidiagonalization
/// and implicit-shift QR, no vectors), into `s` (`k` values, descending).
pub fn singular_values(library: &[f32], n: usize, k: usize, s: &mut [f32]) {
    let matrix = DMatrix::from_row_slice(n, k, &library[..n * k]);
    let mut values: Vec<f32> = matrix.singular_values().iter().copied().collect();
    values.sort_by(|a, b| b.total_cmp(a));
    for (dst, v) in s.iter_mut().zip(values) {
        *dst = v;
    }
}

/// Singular values of the same matrix by the kernel's one-sided Jacobi (after its pivoted QR),
/// into `s`; the scratch comes from the benchmark's heap so the kernel itself allocates
/// nothing. Returns `false` if the kernel reported an error.
pub fn unmix_singular_values(library: &[f32], n: usize, k: usize, s: &mut [f32]) -> bool {
    use unmix::svd::{SvdOptions, SvdOutput, svd, svd_scratch_len};

    let mut scratch = alloc::vec![0.0f32; svd_scratch_len(n, k)];
    let out = SvdOutput::values(&mut s[..k]);
    svd(
        &library[..n * k],
        n,
        k,
        out,
        &mut scratch,
        SvdOptions::default(),
    )
    .is_ok()
}

/// A global allocator that counts the bytes in use and their high-water mark.
pub struct Tracking {
    heap: embedded_alloc::LlffHeap,
    used: AtomicUsize,
    peak: AtomicUsize,
}

impl Tracking {
    /// An allocator with no memory yet; see [`Tracking::init`].
    pub const fn empty() -> Self {
        Tracking {
            heap: embedded_alloc::LlffHeap::empty(),
            used: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    /// Hands the allocator its memory.
    ///
    /// # Safety
    /// `start..start + size` must be memory used by nothing else for the rest of the
    /// program, and this must be called once, before the first allocation.
    pub unsafe fn init(&self, start: usize, size: usize) {
        // SAFETY: forwarded from this function's own contract.
        unsafe { self.heap.init(start, size) }
    }

    /// Resets the high-water mark to the bytes now in use.
    pub fn reset_peak(&self) {
        self.peak
            .store(self.used.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// The most bytes in use at once since the last [`Tracking::reset_peak`].
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }
}

// SAFETY: every request goes to the inner allocator unchanged; the counters only observe.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, passed on as it is.
        let block = unsafe { self.heap.alloc(layout) };
        if !block.is_null() {
            let now = self.used.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            self.peak.fetch_max(now, Ordering::Relaxed);
        }
        block
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        self.used.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract, passed on as it is.
        unsafe { self.heap.dealloc(block, layout) }
    }
}
