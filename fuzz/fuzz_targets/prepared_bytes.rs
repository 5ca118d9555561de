//! Loading a prepared library from bytes, then fitting with it.
//!
//! Inputs are raw bytes, or a well-formed header over fuzzed values with the identity hash
//! fixed up (so the loader gets past the checksum to the value checks), sometimes with one
//! data bit flipped afterwards. Holds: no panic; a flipped bit is always caught by the hash;
//! a successful load writes back exactly the bytes it read, agrees with the fixed-size
//! loader, and every fit with it returns a documented error or finite coefficients.

#![no_main]

use libfuzzer_sys::fuzz_target;
use unmix::{ByteFault, Error, FitOptions, Method, Prepared, PreparedView, bytes};
use unmix_fuzz::Input;

/// Largest storage the target allocates, in `f32` values.
const MAX_STORAGE: usize = 1 << 20;

fuzz_target!(|data: &[u8]| run(&mut Input::new(data)));

fn run(input: &mut Input) {
    let (bytes, flipped) = if input.one_in(4) {
        (input.rest().to_vec(), false)
    } else {
        built(input)
    };

    let header = match bytes::read_header(&bytes) {
        Ok(header) => header,
        Err(error) => return check_header_error(error, &bytes),
    };
    let len = header.shape.prepared_len();
    if len > MAX_STORAGE {
        return;
    }

    let wrong = input.one_in(16);
    let mut storage = vec![0.0f32; if wrong { len + 1 } else { len }];
    let view = match PreparedView::from_bytes(&bytes, &mut storage) {
        Ok(view) => view,
        Err(error) => {
            if flipped && !wrong {
                assert!(
                    matches!(
                        error,
                        Error::BadBytes {
                            fault: ByteFault::Checksum { .. }
                        }
                    ),
                    "a flipped bit was not caught by the hash: {error:?}"
                );
            }
            return check_load_error(error, wrong);
        }
    };
    assert!(!flipped && !wrong, "loaded damaged bytes");

    let mut written = vec![0u8; view.bytes_len()];
    assert_eq!(view.to_bytes(&mut written), Ok(bytes.len()));
    assert!(
        written == bytes,
        "to_bytes does not give back the bytes loaded"
    );
    assert_eq!(view.library_id(), header.id);

    let spectrum: Vec<f32> = (0..view.shape().channels)
        .map(|_| {
            if input.one_in(8) {
                input.f32_bits()
            } else {
                input.unit() * 100.0
            }
        })
        .collect();
    let fixed = fixed_size_agrees(&bytes, &view);
    let lambda = input.f32_bits();
    for method in [
        Method::Lstsq,
        Method::Ridge { lambda },
        Method::Nnls,
        Method::Fcls,
    ] {
        let options = FitOptions::new(method).with_chi2(input.one_in(2));
        match view.fit(&spectrum, &options) {
            Ok(fit) => {
                assert!(fit.coefficients().iter().all(|w| w.is_finite()), "{fit:?}");
                if matches!(method, Method::Nnls | Method::Fcls) {
                    assert!(fit.phases().iter().all(|&w| w >= 0.0), "{fit:?}");
                }
            }
            Err(
                Error::NonFinite { .. }
                | Error::Overflow
                | Error::InvalidLambda
                | Error::LengthMismatch { .. },
            ) => {}
            Err(other) => panic!("fit failed with an undocumented error: {other:?}"),
        }
        if let Some(fixed) = &fixed {
            let same = |a: &[f32], b: &[f32]| {
                a.iter()
                    .map(|v| v.to_bits())
                    .eq(b.iter().map(|v| v.to_bits()))
            };
            let (a, b) = (
                view.fit(&spectrum, &options),
                fixed.view().fit(&spectrum, &options),
            );
            match (a, b) {
                (Ok(a), Ok(b)) => assert!(same(a.coefficients(), b.coefficients())),
                (a, b) => assert_eq!(a.err(), b.err()),
            }
        }
    }
}

/// A well-formed header over fuzzed values, hash fixed up; sometimes a field is replaced, the
/// length is off, or a data bit is flipped after hashing. Returns the bytes and whether a
/// data bit was flipped.
fn built(input: &mut Input) -> (Vec<u8>, bool) {
    let channels = input.range(1, 40) as u32;
    let phases = input.range(0, 17) as u32;
    let terms = input.range(0, 6) as u32;
    let columns = phases + terms;
    let values = channels * columns + columns * columns + 2 * columns;
    let mut fields = [1, channels, phases, terms, values, 0];
    let intact = !input.one_in(8);
    if !intact {
        let at = input.range(0, fields.len() - 1);
        fields[at] = input.u32();
    }

    let mut bytes = b"UNMIXLIB".to_vec();
    for field in fields {
        bytes.extend(field.to_le_bytes());
    }
    bytes.extend([0u8; 8]);

    let c = columns as usize;
    let q_len = channels as usize * c;
    for at in 0..values as usize {
        let v = if input.one_in(16) {
            input.f32_bits()
        } else if at < q_len {
            input.unit()
        } else if at < q_len + c * c {
            let (row, col) = ((at - q_len) / c.max(1), (at - q_len) % c.max(1));
            match row.cmp(&col) {
                std::cmp::Ordering::Less => input.unit(),
                std::cmp::Ordering::Equal => input.unit().abs() + 1e-3,
                std::cmp::Ordering::Greater => 0.0,
            }
        } else {
            input.unit().abs() * input.scale()
        };
        bytes.extend(v.to_le_bytes());
    }

    let id = fnv1a(bytes[..32].iter().chain(&bytes[40..]));
    bytes[32..40].copy_from_slice(&id.to_le_bytes());

    let mut flipped = false;
    if intact && bytes.len() > 40 && input.one_in(8) {
        let at = input.range(40, bytes.len() - 1);
        bytes[at] ^= 1 << input.range(0, 7);
        flipped = true;
    } else if input.one_in(16) {
        let len = input.range(0, bytes.len() + 8);
        bytes.resize(len, input.byte());
    }
    (bytes, flipped)
}

/// 64-bit FNV-1a, as the format documents it.
fn fnv1a<'a>(bytes: impl Iterator<Item = &'a u8>) -> u64 {
    bytes.fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn check_header_error(error: Error, bytes: &[u8]) {
    match error {
        Error::LengthMismatch { found, .. } => assert_eq!(found, bytes.len()),
        Error::BadBytes {
            fault: ByteFault::Magic | ByteFault::Version { .. } | ByteFault::Header,
        } => {}
        other => panic!("read_header failed with an undocumented error: {other:?}"),
    }
}

fn check_load_error(error: Error, wrong_storage: bool) {
    match error {
        Error::LengthMismatch { .. } => assert!(wrong_storage, "{error:?}"),
        Error::BadBytes {
            fault: ByteFault::Checksum { .. } | ByteFault::Value { .. },
        }
        | Error::RankDeficient { .. } => assert!(!wrong_storage, "{error:?}"),
        other => panic!("from_bytes failed with an undocumented error: {other:?}"),
    }
}

/// For the one fixed shape the fuzzer can aim at (16 channels, 4 columns), the firmware's
/// fixed-size loader must accept the same bytes.
fn fixed_size_agrees(bytes: &[u8], view: &PreparedView<'_>) -> Option<Box<Prepared<16, 4>>> {
    let shape = view.shape();
    if shape.channels != 16 || shape.columns() != 4 {
        return None;
    }
    let mut fixed = Box::new(Prepared::<16, 4>::new());
    fixed
        .load_bytes(bytes)
        .expect("the fixed-size loader refused bytes the view accepted");
    assert_eq!(fixed.view().library_id(), view.library_id());
    Some(fixed)
}
