//! The firmware as a device: live streams, bit-for-bit checks against the host kernel, bad
//! input, the instruction-count benchmark, and flash/RAM sizes.
//!
//! Everything talks to the firmware in QEMU through the host tool's own session type
//! ([`unmix_host::stream::Device`]), so these checks exercise the code `unmix stream` runs.
//! The host's answers come from the kernel directly ([`unmix::PreparedView::fit`]), which is
//! what `unmix fit` calls.

use std::path::Path;

use unmix::{Background, PreparedView, Shape};
use unmix_host::fitting::{FitSettings, MethodName};
use unmix_host::output::FitRecord;
use unmix_host::stream::{Device, record};
use unmix_protocol::{
    ErrorKind, ErrorReply, FitResult, LibraryFault, Reply, Request, SampleFormat, encode,
};

#[path = "../../firmware/builtin/synthetic.rs"]
pub(crate) mod synthetic;

/// A prepared library owned here, with the values it was prepared from.
pub(crate) struct Library {
    pub(crate) shape: Shape,
    columns: Vec<f32>,
    storage: Vec<f32>,
}

impl Library {
    /// Prepares `phases` synthetic phases over `channels` channels with `background`.
    pub(crate) fn synthetic(
        channels: usize,
        phases: usize,
        background: Background,
        seed: u64,
    ) -> Self {
        let columns = synthetic::library(channels, phases, seed);
        let shape = Shape::new(channels, phases, background);
        let mut storage = vec![0.0f32; shape.prepared_len()];
        let mut scratch = vec![0.0f64; shape.prepare_scratch_len()];
        unmix::prepare(shape, &columns, &mut storage, &mut scratch)
            .unwrap_or_else(|e| panic!("synthetic library does not prepare: {e}"));
        Library {
            shape,
            columns,
            storage,
        }
    }

    /// The firmware's built-in library (the same generator, shape and seed), prepared here.
    pub(crate) fn builtin() -> Self {
        Library::synthetic(
            synthetic::CHANNELS,
            synthetic::PHASES,
            Background::None,
            synthetic::SEED,
        )
    }

    pub(crate) fn view(&self) -> PreparedView<'_> {
        PreparedView::new(self.shape, &self.storage).expect("prepared storage is valid")
    }

    pub(crate) fn bytes(&self) -> Vec<u8> {
        let view = self.view();
        let mut bytes = vec![0u8; view.bytes_len()];
        view.to_bytes(&mut bytes).expect("sized by bytes_len");
        bytes
    }

    /// A simulated detector frame: a random mixture of the phases (some absent) at about
    /// `counts` counts per phase peak, a sloped background, and Poisson-like noise, rounded
    /// to whole counts.
    pub(crate) fn frame(&self, rng: &mut synthetic::Lcg, counts: f64) -> Vec<f32> {
        let (n, k) = (self.shape.channels, self.shape.phases);
        let weights: Vec<f64> = (0..k)
            .map(|_| {
                let u = rng.next_unit();
                if u < 0.2 { 0.0 } else { counts * u }
            })
            .collect();

        (0..n)
            .map(|i| {
                let row = &self.columns[i * k..(i + 1) * k];
                let pure: f64 = row
                    .iter()
                    .zip(&weights)
                    .map(|(&x, w)| f64::from(x) * w)
                    .sum();
                let mean = pure + 20.0 + 30.0 * i as f64 / n as f64;
                let noise = (rng.next_unit() + rng.next_unit() + rng.next_unit() - 1.5) * 2.0;
                (mean + noise * mean.sqrt()).round().max(0.0) as f32
            })
            .collect()
    }
}

/// The kernel's record of `values` against `library`, as the host computes it.
pub(crate) fn host_record(
    library: &Library,
    settings: &FitSettings,
    values: &[f32],
) -> Result<FitRecord, String> {
    library
        .view()
        .fit(values, &settings.options())
        .map(|fit| FitRecord::from(&fit))
        .map_err(|e| e.to_string())
}

/// Whether two records hold the same bits everywhere.
pub(crate) fn same_bits(a: &FitRecord, b: &FitRecord) -> bool {
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    bits(&a.phases) == bits(&b.phases)
        && bits(&a.background) == bits(&b.background)
        && bits(&a.fractions) == bits(&b.fractions)
        && bits(&a.standard_errors) == bits(&b.standard_errors)
        && a.residual_norm.to_bits() == b.residual_norm.to_bits()
        && a.chi2.map(f32::to_bits) == b.chi2.map(f32::to_bits)
        && a.reduced_chi2.map(f32::to_bits) == b.reduced_chi2.map(f32::to_bits)
        && (a.iterations, a.status) == (b.iterations, b.status)
}

pub(crate) fn settings(method: MethodName, lambda: Option<f32>) -> FitSettings {
    FitSettings::new(method, lambda, None).expect("valid settings")
}

/// Fits `values` on the device and on the host; `Err` when they differ in any bit.
fn fit_both(
    device: &mut Device,
    library: &Library,
    settings: &FitSettings,
    seq: u32,
    format: SampleFormat,
    values: &[f32],
) -> Result<FitResult, String> {
    let mut samples = vec![0u8; values.len() * format.size()];
    unmix_protocol::encode_samples(format, values, &mut samples)
        .ok_or("a sample does not fit the format")?;
    let request = unmix_host::stream::fit_request(seq, settings, &samples);
    let request = match request {
        Request::Fit(mut fit) => {
            fit.format = format;
            Request::Fit(fit)
        }
        other => other,
    };

    let reply = device.call(&request).map_err(|e| e.to_string())?;
    let Reply::Fit(result) = reply else {
        return Err(format!("spectrum {seq}: the device answered {reply:?}"));
    };
    if result.seq != seq {
        return Err(format!("asked for {seq}, got the answer to {}", result.seq));
    }

    let mine = record(&result, library.shape.phases);
    let host = host_record(library, settings, values)?;
    if !same_bits(&mine, &host) {
        return Err(format!(
            "spectrum {seq} ({settings:?}): device {mine:?} differs from host {host:?}"
        ));
    }
    Ok(result)
}

/// `cargo xtask run`: simulated detector frames streamed into the emulated microcontroller,
/// the fractions shown as they come back, each checked against the host's bits.
pub fn live(elf: &Path) -> Result<(), String> {
    let builtin = Library::builtin();
    let mut device = Device::qemu(elf, &[]).map_err(|e| e.to_string())?;
    let info = device.info().map_err(|e| e.to_string())?;
    println!(
        "device: unmix firmware {} on {}, frames up to {} bytes, stack {} bytes",
        info.firmware, info.build.board, info.max_frame, info.stack.size
    );

    let loaded = device.use_builtin().map_err(|e| e.to_string())?;
    if loaded.id != builtin.view().library_id() {
        return Err("the firmware's built-in library differs from the host's".into());
    }
    println!(
        "library: built-in, {} channels x {} phases, id {:#018x} (equal to the host's)",
        loaded.channels, loaded.phases, loaded.id
    );

    let nnls = settings(MethodName::Nnls, None);
    let mut rng = synthetic::Lcg(42);
    let header: Vec<String> = (0..builtin.shape.phases)
        .map(|j| format!("  f{j}  "))
        .collect();
    println!(
        "\n  seq | {} | residual | instr/fit | host",
        header.join("")
    );

    let frames = 12;
    let mut cost = 0u64;
    for seq in 0..frames {
        let values = builtin.frame(&mut rng, 4000.0);
        let result = fit_both(
            &mut device,
            &builtin,
            &nnls,
            seq,
            SampleFormat::U16,
            &values,
        )?;
        let fractions: Vec<String> = result
            .fractions
            .iter()
            .map(|f| format!("{f:6.3} "))
            .collect();
        println!(
            "  {seq:3} | {}| {:8.1} | {:9} | identical",
            fractions.join(""),
            result.residual_norm,
            result.cost
        );
        cost += u64::from(result.cost);
    }

    let closing = device.close().map_err(|e| e.to_string())?;
    println!(
        "\n{frames} frames fitted by the firmware, every one bit-identical to the host's; \
         {} instructions per NNLS fit (2048 x 8, QEMU -icount); stack used {} of {} bytes",
        cost / u64::from(frames),
        closing.stack.used,
        closing.stack.size
    );
    print_log(elf, &closing.log);
    match closing.exit {
        Some(status) if status.success() => Ok(()),
        other => Err(format!("QEMU ended with {other:?}")),
    }
}

/// Check: every method, the built-in library and libraries uploaded over the wire (with a
/// background), `f32`, `u16` and `u32` samples: the device's bits equal the host's.
pub fn check_identical(elf: &Path) -> Result<u64, String> {
    let mut device = Device::qemu(elf, &[]).map_err(|e| e.to_string())?;
    let info = device.info().map_err(|e| e.to_string())?;
    let mut checked = 0u64;

    let builtin = Library::builtin();
    let loaded = device.use_builtin().map_err(|e| e.to_string())?;
    if loaded.id != builtin.view().library_id() {
        return Err("built-in library id differs from the host's".into());
    }
    let mut rng = synthetic::Lcg(7);
    for (seq, format) in [SampleFormat::F32, SampleFormat::U16, SampleFormat::U32]
        .into_iter()
        .enumerate()
    {
        let values = builtin.frame(&mut rng, 3000.0);
        fit_both(
            &mut device,
            &builtin,
            &settings(MethodName::Nnls, None),
            seq as u32,
            format,
            &values,
        )?;
        checked += 1;
    }

    let methods = [
        settings(MethodName::Nnls, None),
        settings(MethodName::Fcls, None),
        settings(MethodName::Lstsq, None),
        settings(MethodName::Ridge, Some(0.5)),
    ];
    for (round, background) in [Background::Chebyshev { degree: 2 }, Background::None]
        .into_iter()
        .enumerate()
    {
        let library = Library::synthetic(300, 5, background, 100 + round as u64);
        let info = device.upload(&library.bytes()).map_err(|e| e.to_string())?;
        if info.id != library.view().library_id() {
            return Err("uploaded library id differs from the host's".into());
        }

        for (index, method) in methods.iter().enumerate() {
            for repeat in 0..4 {
                let seq = 100 * (round as u32 + 1) + 10 * index as u32 + repeat;
                let values = library.frame(&mut rng, 500.0 * f64::from(repeat + 1));
                fit_both(
                    &mut device,
                    &library,
                    method,
                    seq,
                    SampleFormat::F32,
                    &values,
                )?;
                checked += 1;
            }
        }
    }

    let closing = device.close().map_err(|e| e.to_string())?;
    if !closing.exit.is_some_and(|s| s.success()) {
        return Err(format!("QEMU ended with {:?}", closing.exit));
    }
    println!("{checked} fits bit-identical (built-in and two uploaded libraries, 4 methods)");

    // What one spectrum needs in RAM: its receive frame, its samples as `f32`, and the
    // deepest stack the fits above reached (every method, the 2048 x 8 library among them).
    let frame = u64::from(info.max_frame);
    let samples = 4 * u64::from(info.build.max_channels);
    let stack = u64::from(closing.stack.used);
    let working_set = frame + samples + stack;
    println!(
        "working set per spectrum: frame {frame} + samples {samples} + stack {stack} = \
         {working_set} bytes (budget {WORKING_SET_BUDGET})"
    );
    if working_set > WORKING_SET_BUDGET {
        return Err(format!(
            "the per-spectrum working set, {working_set} bytes, exceeds the \
             {WORKING_SET_BUDGET}-byte budget"
        ));
    }
    Ok(checked)
}

/// RAM that the firmware may use per spectrum (N = 2048, K = 8), stack included: 32 KiB.
const WORKING_SET_BUDGET: u64 = 32 * 1024;

/// Check: garbage, truncated, corrupted and oversized frames, unknown messages,
/// wrong-length and non-finite spectra, bad lambdas and libraries, between valid requests:
/// every frame gets exactly the expected reply, in order, and the valid fits stay exact.
pub fn check_bad_input(elf: &Path) -> Result<u64, String> {
    let mut device = Device::qemu(elf, &[]).map_err(|e| e.to_string())?;
    let info = device.info().map_err(|e| e.to_string())?;
    let builtin = Library::builtin();
    let nnls = settings(MethodName::Nnls, None);
    let mut rng = synthetic::Lcg(99);
    let mut checks = 0u64;

    let mut expect = |device: &mut Device, what: &str, wanted: &dyn Fn(&Reply) -> bool| {
        let reply = device.receive().map_err(|e| format!("{what}: {e}"))?;
        if wanted(&reply) {
            checks += 1;
            Ok(())
        } else {
            Err(format!("{what}: unexpected reply {reply:?}"))
        }
    };
    let frame_error = |reply: &Reply| {
        matches!(
            reply,
            Reply::Error(ErrorReply {
                seq: None,
                kind: ErrorKind::BadCrc { .. } | ErrorKind::BadFrame
            })
        )
    };

    // No library yet: a fit is refused with its sequence number.
    let values = builtin.frame(&mut rng, 3000.0);
    send(&mut device, &fit_f32(&nnls, 1, &values))?;
    expect(&mut device, "fit before any library", &|r| {
        *r == Reply::Error(ErrorReply {
            seq: Some(1),
            kind: ErrorKind::NoLibrary,
        })
    })?;
    device.use_builtin().map_err(|e| e.to_string())?;

    // Garbage without a delimiter, closed by one.
    let garbage: Vec<u8> = (0..700).map(|i| (i * 37 % 255 + 1) as u8).collect();
    device.send_raw(&garbage).map_err(|e| e.to_string())?;
    device.send_raw(&[0]).map_err(|e| e.to_string())?;
    expect(&mut device, "garbage", &frame_error)?;
    fit_both(&mut device, &builtin, &nnls, 2, SampleFormat::F32, &values)?;

    // A truncated frame.
    let whole = frame(&fit_f32(&nnls, 3, &values).request());
    device
        .send_raw(&whole[..whole.len() / 2])
        .map_err(|e| e.to_string())?;
    device.send_raw(&[0]).map_err(|e| e.to_string())?;
    expect(&mut device, "truncated frame", &frame_error)?;

    // A corrupted frame: one byte changed (to another non-zero value).
    let mut corrupted = frame(&fit_f32(&nnls, 4, &values).request());
    let middle = corrupted.len() / 2;
    corrupted[middle] = if corrupted[middle] == 0x55 {
        0x56
    } else {
        0x55
    };
    device.send_raw(&corrupted).map_err(|e| e.to_string())?;
    expect(&mut device, "corrupted frame", &frame_error)?;
    fit_both(&mut device, &builtin, &nnls, 5, SampleFormat::F32, &values)?;

    // An oversized frame.
    let limit = info.max_frame;
    let oversized = vec![0x11u8; limit as usize + 100];
    device.send_raw(&oversized).map_err(|e| e.to_string())?;
    device.send_raw(&[0]).map_err(|e| e.to_string())?;
    expect(&mut device, "oversized frame", &|r| {
        *r == Reply::Error(ErrorReply {
            seq: None,
            kind: ErrorKind::FrameTooLong { limit },
        })
    })?;

    // An unknown message.
    device
        .send_raw(&frame(&[0x2Au8]))
        .map_err(|e| e.to_string())?;
    expect(&mut device, "unknown message", &|r| {
        *r == Reply::Error(ErrorReply {
            seq: None,
            kind: ErrorKind::UnknownMessage { tag: 42 },
        })
    })?;

    // A spectrum one channel short, and one holding NaN at channel 5.
    send(&mut device, &fit_f32(&nnls, 6, &values[1..]))?;
    expect(&mut device, "wrong length", &|r| {
        *r == Reply::Error(ErrorReply {
            seq: Some(6),
            kind: ErrorKind::WrongLength {
                expected: 2048,
                found: 2047,
            },
        })
    })?;
    let mut nan = values.clone();
    nan[5] = f32::NAN;
    send(&mut device, &fit_f32(&nnls, 7, &nan))?;
    expect(&mut device, "NaN sample", &|r| {
        *r == Reply::Error(ErrorReply {
            seq: Some(7),
            kind: ErrorKind::NonFinite { channel: 5 },
        })
    })?;

    // A negative ridge lambda.
    let mut samples = Vec::new();
    for v in &values {
        samples.extend(v.to_le_bytes());
    }
    let ridge = settings(MethodName::Ridge, Some(1.0));
    let Request::Fit(mut bad_lambda) = unmix_host::stream::fit_request(8, &ridge, &samples) else {
        return Err("fit_request built no fit".into());
    };
    bad_lambda.lambda = -1.0;
    send(&mut device, &Request::Fit(bad_lambda))?;
    expect(&mut device, "negative lambda", &|r| {
        *r == Reply::Error(ErrorReply {
            seq: Some(8),
            kind: ErrorKind::InvalidLambda,
        })
    })?;
    fit_both(&mut device, &builtin, &nnls, 9, SampleFormat::F32, &values)?;

    // A library larger than the upload buffer, then a chunk with no upload open.
    let capacity = info.build.upload_capacity;
    send(
        &mut device,
        &Request::LoadBegin {
            total_len: capacity + 1,
            crc32: 0,
        },
    )?;
    expect(&mut device, "library too large", &|r| {
        *r == Reply::Error(ErrorReply {
            seq: None,
            kind: ErrorKind::LibraryTooLarge {
                size: capacity + 1,
                capacity,
            },
        })
    })?;
    send(
        &mut device,
        &Request::LoadChunk {
            offset: 0,
            bytes: &[1, 2, 3],
        },
    )?;
    expect(&mut device, "chunk without upload", &|r| {
        *r == Reply::Error(ErrorReply {
            seq: None,
            kind: ErrorKind::LoadNotStarted,
        })
    })?;

    // A library damaged before its CRC was computed: the kernel's identity hash catches it.
    let small = Library::synthetic(64, 3, Background::None, 5);
    let mut damaged = small.bytes();
    let at = damaged.len() - 9;
    damaged[at] ^= 0x01;
    match device.upload(&damaged) {
        Err(unmix_host::stream::DeviceError::Refused { reply, .. })
            if reply.kind
                == (ErrorKind::BadLibrary {
                    fault: LibraryFault::Checksum,
                }) =>
        {
            checks += 1;
        }
        other => return Err(format!("damaged library: {other:?}")),
    }

    // The built-in library is still in use and still exact.
    fit_both(&mut device, &builtin, &nnls, 10, SampleFormat::F32, &values)?;

    let closing = device.close().map_err(|e| e.to_string())?;
    if !closing.exit.is_some_and(|s| s.success()) {
        return Err(format!("QEMU ended with {:?}", closing.exit));
    }
    println!("{checks} bad inputs answered with the expected error, valid fits exact and in order");
    Ok(checks + 4)
}

/// `cargo xtask bench`: instructions per fit for each method on the built-in library
/// (2048 channels x 8 phases) under `-icount shift=0,sleep=off`, beside the bare pass.
pub fn bench(elf: &Path) -> Result<(), String> {
    let builtin = Library::builtin();
    let mut device = Device::qemu(elf, &[]).map_err(|e| e.to_string())?;
    device.use_builtin().map_err(|e| e.to_string())?;

    let mut rng = synthetic::Lcg(2024);
    let frames: Vec<Vec<f32>> = (0..8).map(|_| builtin.frame(&mut rng, 5000.0)).collect();
    let methods = [
        ("nnls", settings(MethodName::Nnls, None)),
        ("fcls", settings(MethodName::Fcls, None)),
        ("lstsq", settings(MethodName::Lstsq, None)),
        ("ridge", settings(MethodName::Ridge, Some(0.5))),
    ];

    let mut rows = Vec::new();
    let mut seq = 0;
    for (name, method) in &methods {
        for chi2 in [true, false] {
            let mut method = *method;
            method.chi2 = chi2;
            let mut costs = Vec::new();
            for values in &frames {
                let result = fit_both(
                    &mut device,
                    &builtin,
                    &method,
                    seq,
                    SampleFormat::U16,
                    values,
                )?;
                costs.push(result.cost);
                seq += 1;
            }
            costs.sort_unstable();
            rows.push((
                *name,
                chi2,
                costs[0],
                costs[costs.len() / 2],
                costs[costs.len() - 1],
            ));
        }
    }

    let closing = device.close().map_err(|e| e.to_string())?;
    let log = decode_log(elf, &closing.log);
    let logged = |label: &str| {
        log.iter()
            .find_map(|line| {
                let rest = line.split_once(label)?.1;
                rest.split_once("): ")?
                    .1
                    .split_whitespace()
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .ok_or(format!("the firmware did not log its {label}"))
    };
    let floor = logged("bare pass over the built-in library")?;
    let projection = logged("kernel projection")?;

    println!("\ninstructions per fit, QEMU mps2-an386 (Cortex-M4F) with -icount shift=0,sleep=off");
    println!(
        "(instructions, not cycles; exact to 40), 2048 channels x 8 phases, {} frames each\n",
        frames.len()
    );
    println!("  method  chi2   min      median   max      / generic pass  / kernel projection");
    for (name, chi2, min, median, max) in rows {
        println!(
            "  {name:<6}  {:<5}  {min:<8} {median:<8} {max:<8} {:<15.3} {:.3}",
            if chi2 { "yes" } else { "no" },
            f64::from(median) / floor as f64,
            f64::from(median) / projection as f64
        );
    }
    println!("\n  generic multiply-add pass z = Q^T y (2048 x 8): {floor} instructions");
    println!("  kernel projection z = Q^T y and ||y||^2 (2048 x 8): {projection} instructions");
    println!(
        "  stack used {} of {} bytes",
        closing.stack.used, closing.stack.size
    );
    Ok(())
}

/// Flash and static RAM of the firmware ELF, from its section headers.
pub fn sizes(elf: &Path) -> Result<String, String> {
    let (flash, ram, largest) = crate::bench::section_sizes(elf)?;
    let sections: Vec<String> = largest
        .iter()
        .take(5)
        .map(|(n, s)| format!("{n} {s}"))
        .collect();
    Ok(format!(
        "flash {flash} bytes ({:.1} KiB), static RAM {ram} bytes ({:.1} KiB); largest sections: {}",
        flash as f64 / 1024.0,
        ram as f64 / 1024.0,
        sections.join(", ")
    ))
}

fn fit_f32(settings: &FitSettings, seq: u32, values: &[f32]) -> OwnedFit {
    let samples = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    OwnedFit {
        settings: *settings,
        seq,
        samples,
    }
}

/// A fit request whose samples this value owns.
struct OwnedFit {
    settings: FitSettings,
    seq: u32,
    samples: Vec<u8>,
}

impl OwnedFit {
    fn request(&self) -> Request<'_> {
        unmix_host::stream::fit_request(self.seq, &self.settings, &self.samples)
    }
}

/// Something that becomes a request.
trait AsRequest {
    fn as_request(&self) -> Request<'_>;
}

impl AsRequest for OwnedFit {
    fn as_request(&self) -> Request<'_> {
        self.request()
    }
}

impl AsRequest for Request<'_> {
    fn as_request(&self) -> Request<'_> {
        *self
    }
}

fn send(device: &mut Device, request: &dyn AsRequest) -> Result<(), String> {
    device
        .send_raw(&frame(&request.as_request()))
        .map_err(|e| e.to_string())
}

pub(crate) fn frame<T: serde::Serialize + ?Sized>(message: &T) -> Vec<u8> {
    let mut out = vec![0u8; 20_000];
    let len = encode(message, &mut out).expect("test frames fit 20 kB");
    out.truncate(len);
    out
}

/// Check: the `fault-check` firmware panics right after boot; QEMU must end within its time
/// limit with a failure status, its log showing the panic and then the HardFault handler.
pub fn check_panic_exits(elf: &Path) -> Result<u64, String> {
    use std::process::Command;
    use std::time::{Duration, Instant};

    const LIMIT: Duration = Duration::from_secs(30);
    let mut qemu = Command::new("qemu-system-arm");
    qemu.args(["-machine", "mps2-an386", "-cpu", "cortex-m4"]);
    let started = Instant::now();
    let (status, raw) =
        crate::targets::run_semihosted_raw(qemu, elf, "the panicking firmware", LIMIT)?;
    let log = decode_log(elf, &raw);

    if status.success() {
        return Err(format!(
            "a panic ended QEMU with success:\n{}",
            log.join("\n")
        ));
    }
    let panicked = log.iter().position(|l| l.contains("deliberate panic"));
    let faulted = log.iter().position(|l| l.contains("HardFault"));
    match (panicked, faulted) {
        (Some(p), Some(f)) if p < f => {
            println!(
                "a panic ended QEMU with {status} in {:.1} s: {}; then {}",
                started.elapsed().as_secs_f64(),
                log[p].trim(),
                log[f].trim()
            );
            Ok(1)
        }
        _ => Err(format!(
            "QEMU ended with {status}, but the log lacks the panic and the HardFault after \
             it:\n{}",
            log.join("\n")
        )),
    }
}

fn decode_log(elf: &Path, raw: &[u8]) -> Vec<String> {
    let Ok(bytes) = std::fs::read(elf) else {
        return Vec::new();
    };
    match defmt_decoder::Table::parse(&bytes) {
        Ok(Some(table)) => crate::firmware::decode(&table, raw),
        _ => vec!["(no defmt table in the ELF)".into()],
    }
}

fn print_log(elf: &Path, raw: &[u8]) {
    println!("\nfirmware log (defmt over semihosting):");
    for line in decode_log(elf, raw) {
        println!("  {line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_differing_in_one_bit_are_not_the_same() {
        let a = FitRecord {
            phases: vec![1.0, 2.0],
            background: vec![],
            fractions: vec![0.5, 0.5],
            standard_errors: vec![0.1, 0.1],
            residual_norm: 3.0,
            chi2: Some(1.0),
            reduced_chi2: Some(0.5),
            iterations: 2,
            status: unmix::Status::Converged,
        };
        let mut b = a.clone();
        assert!(same_bits(&a, &b));

        b.fractions[1] = f32::from_bits(0.5f32.to_bits() + 1);
        assert!(!same_bits(&a, &b));
    }

    #[test]
    fn the_built_in_library_prepares_and_has_the_firmware_shape() {
        let library = Library::builtin();
        assert_eq!(library.shape.channels, 2048);
        assert_eq!(library.shape.columns(), 8);
        assert_eq!(library.bytes().len(), library.shape.bytes_len());
    }
}
