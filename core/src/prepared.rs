//! Prepared libraries: a borrowed view with run-time sizes, and a fixed-size owner.
//!
//! Every algorithm runs on [`PreparedView`], whose sizes are run-time values over borrowed
//! `f32` storage. [`Prepared`] owns fixed arrays sized by const generics (for firmware that
//! knows `N` and `C` at compile time) and hands out a view, so both paths run the same code
//! and produce the same bits (the model is heapless' `Vec` and `VecView`).

use crate::bytes::{self, Fnv, HEADER_LEN, Header};
use crate::{Background, Error, MAX_COLUMNS, RANK_TOLERANCE, Shape};

/// A prepared library with run-time sizes over borrowed storage.
///
/// It holds the thin `Q` (`n * c`, channel-major: `q[i * c + j]`), `R` (`c * c`, row-major,
/// upper triangular with a positive diagonal), the column scales `d_j = 1 / ||x_j||` (an
/// original coefficient is `w_j = d_j u_j` where `u` solves the scaled problem) and the
/// standard-error factors `d_j * ||row j of R^-1||`. Build one with [`crate::prepare`],
/// [`PreparedView::new`] over storage laid out as [`PreparedView::as_parts`] describes,
/// [`PreparedView::from_bytes`], or [`Prepared::view`].
#[derive(Clone, Copy, Debug)]
pub struct PreparedView<'a> {
    pub(crate) shape: Shape,
    pub(crate) q: &'a [f32],
    pub(crate) r: &'a [f32],
    pub(crate) scale: &'a [f32],
    pub(crate) se: &'a [f32],
}

impl<'a> PreparedView<'a> {
    /// A view over `data`, which holds `Q`, `R`, the scales and the standard-error factors
    /// one after the other ([`Shape::prepared_len`] values in all), as written by
    /// [`crate::prepare`].
    ///
    /// # Errors
    /// Shape errors from [`Shape::validate`]; [`Error::LengthMismatch`] when `data` has the
    /// wrong length; [`Error::RankDeficient`] naming a column whose diagonal entry of `R` is
    /// not finite or below [`RANK_TOLERANCE`], or whose scale is not positive and finite.
    pub fn new(shape: Shape, data: &'a [f32]) -> Result<Self, Error> {
        shape.validate()?;
        if data.len() != shape.prepared_len() {
            return Err(Error::LengthMismatch {
                expected: shape.prepared_len(),
                found: data.len(),
            });
        }

        let n = shape.channels;
        let c = shape.columns();
        let mismatch = Error::LengthMismatch {
            expected: shape.prepared_len(),
            found: data.len(),
        };
        let (q, rest) = data.split_at_checked(n * c).ok_or(mismatch)?;
        let (r, rest) = rest.split_at_checked(c * c).ok_or(mismatch)?;
        let (scale, se) = rest.split_at_checked(c).ok_or(mismatch)?;
        let view = PreparedView {
            shape,
            q,
            r,
            scale,
            se,
        };

        view.check_diagonal()?;
        Ok(view)
    }

    fn check_diagonal(&self) -> Result<(), Error> {
        let c = self.shape.columns();
        for j in 0..c {
            let diag = self.r.get(j * c + j).copied().unwrap_or(0.0);
            let scale = self.scale.get(j).copied().unwrap_or(0.0);
            let ok = |v: f32| v > 0.0 && v.is_finite();
            // `prepare` never writes a diagonal below the tolerance; a smaller one could make
            // a ridge subproblem singular.
            if !ok(diag) || diag < RANK_TOLERANCE as f32 || !ok(scale) {
                return Err(Error::RankDeficient { column: j });
            }
        }
        Ok(())
    }

    /// Loads a serialized library ([`PreparedView::to_bytes`]) into `storage`, which must
    /// hold exactly the [`Shape::prepared_len`] given by [`bytes::read_header`].
    ///
    /// # Errors
    /// [`Error::BadBytes`] for a malformed header, a hash mismatch or a non-finite value;
    /// [`Error::LengthMismatch`] for wrongly sized `bytes` or `storage`; the errors of
    /// [`PreparedView::new`].
    pub fn from_bytes(bytes: &[u8], storage: &'a mut [f32]) -> Result<Self, Error> {
        let header = bytes::read_header(bytes)?;
        let shape = header.shape;
        if storage.len() != shape.prepared_len() {
            return Err(Error::LengthMismatch {
                expected: shape.prepared_len(),
                found: storage.len(),
            });
        }

        let c = shape.columns();
        let mismatch = Error::LengthMismatch {
            expected: shape.prepared_len(),
            found: storage.len(),
        };
        let (q, rest) = storage
            .split_at_mut_checked(shape.channels * c)
            .ok_or(mismatch)?;
        let (r, rest) = rest.split_at_mut_checked(c * c).ok_or(mismatch)?;
        let (scale, se) = rest.split_at_mut_checked(c).ok_or(mismatch)?;
        bytes::decode_into(bytes, header, [q, r, scale, se])?;

        PreparedView::new(shape, storage)
    }

    /// The sizes of the library.
    pub const fn shape(&self) -> Shape {
        self.shape
    }

    /// The stored parts: `Q` (channel-major), `R` (row-major), scales, standard-error factors.
    pub const fn as_parts(&self) -> [&'a [f32]; 4] {
        [self.q, self.r, self.scale, self.se]
    }

    /// Number of bytes [`PreparedView::to_bytes`] writes.
    pub const fn bytes_len(&self) -> usize {
        self.shape.bytes_len()
    }

    /// Writes the stable byte format (see [`crate::bytes`]) into the start of `out` and
    /// returns the number of bytes written.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] when `out` is shorter than [`PreparedView::bytes_len`].
    pub fn to_bytes(&self, out: &mut [u8]) -> Result<usize, Error> {
        let len = self.bytes_len();
        let found = out.len();
        let out = out.get_mut(..len).ok_or(Error::LengthMismatch {
            expected: len,
            found,
        })?;

        let (head, data) = out.split_at_mut(HEADER_LEN);
        let (prefix, id) = head.split_at_mut(32);
        prefix.copy_from_slice(&bytes::header_prefix(self.shape));
        let values = self.as_parts().into_iter().flat_map(|p| p.iter());
        for (dst, v) in data.chunks_exact_mut(4).zip(values) {
            dst.copy_from_slice(&v.to_le_bytes());
        }
        id.copy_from_slice(&self.library_id().to_le_bytes());
        Ok(len)
    }

    /// The identity hash of this library: FNV-1a over its serialized header (without the
    /// hash) and data. Equal ids mean, barring collisions, bit-identical libraries. Costs one
    /// pass over the stored values.
    pub fn library_id(&self) -> u64 {
        let mut fnv = Fnv::new();
        fnv.write(&bytes::header_prefix(self.shape));
        for part in self.as_parts() {
            for v in part {
                fnv.write(&v.to_le_bytes());
            }
        }
        fnv.finish()
    }
}

/// A prepared library with compile-time sizes: `N` channels, `C` columns (phases plus
/// background terms). It holds `4 * (N C + C C + 2 C)` bytes plus the shape; for
/// `N = 2048, C = 8` that is 65.8 KiB, so firmware keeps it in a `static` (or flash) rather
/// than on the stack.
///
/// Shapes outside the capacities (`C` of 0 or above [`MAX_COLUMNS`], `N < C`) fail to
/// compile when any method is used.
#[derive(Clone, Debug)]
pub struct Prepared<const N: usize, const C: usize> {
    q: [[f32; C]; N],
    r: [[f32; C]; C],
    scale: [f32; C],
    se: [f32; C],
    phases: usize,
    background: Background,
}

impl<const N: usize, const C: usize> Default for Prepared<N, C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize, const C: usize> Prepared<N, C> {
    const CHECK: () = assert!(C >= 1 && C <= MAX_COLUMNS && N >= C, "unsupported shape");

    /// An empty library (no phases): fitting with it returns [`Error::NoPhases`] until
    /// [`Prepared::prepare`] or [`Prepared::load_bytes`] succeeds.
    pub const fn new() -> Self {
        let () = Self::CHECK;
        Prepared {
            q: [[0.0; C]; N],
            r: [[0.0; C]; C],
            scale: [0.0; C],
            se: [0.0; C],
            phases: 0,
            background: Background::None,
        }
    }

    /// Prepares `library` (`N * phases` values, channel-major, with `phases` =
    /// `C - background.terms()`) in place; see [`crate::prepare`].
    ///
    /// # Errors
    /// Those of [`crate::prepare`]; [`Error::TooManyColumns`] when `background` has more
    /// than `C - 1` terms. On error the library is left empty.
    pub fn prepare(
        &mut self,
        library: &[f32],
        background: Background,
        scratch: &mut [f64],
    ) -> Result<(), Error> {
        let () = Self::CHECK;
        self.phases = 0;
        let phases = C
            .checked_sub(background.terms())
            .ok_or(Error::TooManyColumns {
                phases: 0,
                background_terms: background.terms(),
            })?;

        let shape = Shape::new(N, phases, background);
        let parts = [
            self.q.as_flattened_mut(),
            self.r.as_flattened_mut(),
            &mut self.scale[..],
            &mut self.se[..],
        ];
        crate::factor::prepare_parts(shape, library, parts, scratch)?;

        self.set_shape(shape)
    }

    /// Loads a serialized library in place.
    ///
    /// # Errors
    /// Those of [`PreparedView::from_bytes`]; [`Error::LengthMismatch`] when the header's
    /// shape is not `N` by `C`. On error the library is left empty.
    pub fn load_bytes(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let () = Self::CHECK;
        self.phases = 0;
        let header: Header = bytes::read_header(bytes)?;
        let shape = header.shape;
        if shape.channels != N || shape.columns() != C {
            return Err(Error::LengthMismatch {
                expected: Shape::new(N, C, Background::None).prepared_len(),
                found: shape.prepared_len(),
            });
        }

        let parts = [
            self.q.as_flattened_mut(),
            self.r.as_flattened_mut(),
            &mut self.scale[..],
            &mut self.se[..],
        ];
        bytes::decode_into(bytes, header, parts)?;

        self.set_shape(shape)
    }

    fn set_shape(&mut self, shape: Shape) -> Result<(), Error> {
        let view = PreparedView {
            shape,
            q: self.q.as_flattened(),
            r: self.r.as_flattened(),
            scale: &self.scale,
            se: &self.se,
        };
        view.check_diagonal()?;

        self.phases = shape.phases;
        self.background = shape.background;
        Ok(())
    }

    /// A view with run-time sizes over this library's storage. For an empty library the
    /// view has no phases and every fit returns [`Error::NoPhases`].
    pub fn view(&self) -> PreparedView<'_> {
        PreparedView {
            shape: Shape::new(N, self.phases, self.background),
            q: self.q.as_flattened(),
            r: self.r.as_flattened(),
            scale: &self.scale,
            se: &self.se,
        }
    }
}
