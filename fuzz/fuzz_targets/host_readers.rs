//! The host's file readers on arbitrary file contents.
//!
//! The first byte picks the extension (`.csv`, `.npy`, `.xy`, `.msa`); the rest is written to
//! a file of that name and read as spectra, and a `.csv` also as a library. Holds: no panic
//! and no unbounded allocation; failures come back as values; whatever is read keeps the
//! readers' promises (finite values, an axis as long as the values, a library's phases
//! distinct and its axis strictly monotonic).

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use unmix_host::formats::{read_library, read_spectra};

/// Most spectra taken from one file: a `.npy` header may promise billions of rows.
const MAX_SPECTRA: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, contents)) = data.split_first() else {
        return;
    };
    let extension = ["csv", "npy", "xy", "msa"][usize::from(selector % 4)];
    let path = scratch_dir().join(format!("input.{extension}"));
    std::fs::write(&path, contents).expect("the scratch directory is writable");

    if let Ok(source) = read_spectra(&path) {
        for item in source.take(MAX_SPECTRA) {
            let Ok(spectrum) = item else { continue };
            assert!(!spectrum.values.is_empty(), "{spectrum:?}");
            assert!(
                spectrum.values.iter().all(|v| v.is_finite()),
                "{spectrum:?}"
            );
            if let Some(axis) = &spectrum.axis {
                assert_eq!(axis.len(), spectrum.values.len());
            }
        }
    }

    if extension == "csv"
        && let Ok(library) = read_library(&path)
    {
        let (n, k) = (library.channels(), library.phases());
        assert_eq!(library.data.len(), n * k);
        assert!(library.data.iter().all(|v| v.is_finite()));
        assert!(library.axis.windows(2).all(|w| w[0] != w[1]));
        for (j, name) in library.names.iter().enumerate() {
            assert!(!library.names[..j].contains(name), "phase {name} twice");
        }
    }
});

/// A directory of this process's own, made once.
fn scratch_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("unmix-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("cannot make the scratch directory");
        dir
    })
}
