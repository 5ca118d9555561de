//! `cargo xtask bench`, kernel part: instruction counts of every kernel and two baselines on
//! the Cortex-M4F under QEMU, stack and memory figures, host throughput on request.
//!
//! The benchmark binary (`tests/targets/src/bin/bench.rs`, built with `--features bench`)
//! runs on QEMU's `mps2-an386` with `-icount shift=0,sleep=off`, where one tick of the CMSDK
//! Timer0 is exactly 40 guest instructions. It prints one `key=value` record per line; this
//! module parses them, subtracts the timer overhead measured on an empty region, divides by
//! the repetitions and prints the tables (as Markdown, the same text the README holds).
//! The figures are instruction counts, not cycles: QEMU models neither pipeline nor wait
//! states.
//!
//! Options: `--json FILE` writes every figure as JSON; `--host [SPECTRA]` also runs the host
//! throughput benchmark (`host/benches/throughput.rs`) on `SPECTRA` spectra (default 8192).

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use serde_json::{Value, json};

use crate::toolchain::{Route, Setup};

/// The benchmark's target and QEMU machine.
const TARGET: &str = "thumbv7em-none-eabihf";
const MACHINE: &str = "mps2-an386";

/// QEMU is stopped after this long (the whole benchmark takes about 10 s).
const RUN_TIMEOUT: Duration = Duration::from_secs(600);

/// The library SVD, singular values only: the kernel's and nalgebra's.
pub const SVD_KERNELS: [&str; 2] = ["unmix_svd_values", "nalgebra_svd_values"];

/// The kernels in table order, with the names the JSON uses.
pub const KERNELS: [&str; 7] = [
    "floor",
    "projection",
    "ridge",
    "nnls",
    "fcls",
    "lawson_hanson_full",
    "nalgebra_svd",
];

/// The three measured versions of the bare pass; the least is the floor.
const FLOOR_CANDIDATES: [&str; 3] = ["floor_tight", "floor_multiply_add_pass", "floor_project"];

/// The design targets, checked at this size.
const TARGET_N: u64 = 2048;
const TARGET_K: u64 = 8;
const TARGET_RATIO: f64 = 1.3;
const TARGET_SPEEDUP: f64 = 10.0;
const TARGET_RAM: u64 = 32 * 1024;

/// Default spectra for `--host`.
const HOST_SPECTRA: u64 = 8192;

/// Command-line options of `cargo xtask bench`.
#[derive(Debug, Default, PartialEq)]
pub struct Options {
    /// Where to write the JSON, if anywhere.
    pub json: Option<PathBuf>,
    /// Spectra for the host throughput run, if it is wanted.
    pub host: Option<u64>,
}

impl Options {
    /// Parses the arguments after `bench`.
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let mut options = Options::default();
        let mut rest = args.iter().peekable();
        while let Some(arg) = rest.next() {
            match arg.as_str() {
                "--json" => {
                    let file = rest.next().ok_or("--json needs a file name")?;
                    options.json = Some(PathBuf::from(file));
                }
                "--host" => {
                    let count = rest.next_if(|next| next.parse::<u64>().is_ok());
                    let count = count.and_then(|c| c.parse().ok()).unwrap_or(HOST_SPECTRA);
                    options.host = Some(count);
                }
                other => return Err(format!("bench: unknown option `{other}`")),
            }
        }
        Ok(options)
    }
}

/// One kernel at one size, as measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub n: u64,
    pub k: u64,
    pub kernel: String,
    pub reps: u64,
    pub ticks: u64,
    pub stack: u64,
    pub saturated: bool,
}

/// Everything the benchmark binary printed, parsed.
#[derive(Debug, Default)]
pub struct Report {
    /// Set-up fields of the `bench` line.
    pub setup: BTreeMap<String, String>,
    /// Timer ticks of an empty region, by repetition count.
    pub overhead: BTreeMap<u64, u64>,
    /// Stack of the empty region, by repetition count.
    pub overhead_stack: BTreeMap<u64, u64>,
    /// Every `row` line.
    pub rows: Vec<Row>,
    /// `detail` fields by `(n, k, kernel)`.
    pub details: BTreeMap<(u64, u64, String), BTreeMap<String, String>>,
    /// `check` fields by `(n, k)`.
    pub checks: BTreeMap<(u64, u64), BTreeMap<String, String>>,
    /// Failures the binary counted (`done` line); `None` if it never finished.
    pub failures: Option<u64>,
}

/// The `key=value` fields of one line after its first word.
fn fields(line: &str) -> BTreeMap<String, String> {
    line.split_whitespace()
        .skip(1)
        .filter_map(|pair| pair.split_once('='))
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

fn number(map: &BTreeMap<String, String>, key: &str) -> Result<u64, String> {
    map.get(key)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("bench output: missing or bad `{key}`"))
}

/// Parses the benchmark binary's output.
pub fn parse(output: &str) -> Result<Report, String> {
    let mut report = Report::default();
    for line in output.lines() {
        let map = fields(line);
        match line.split_whitespace().next().unwrap_or("") {
            "bench" => report.setup = map,
            "overhead" => {
                let reps = number(&map, "reps")?;
                report.overhead.insert(reps, number(&map, "ticks")?);
                report.overhead_stack.insert(reps, number(&map, "stack")?);
            }
            "row" => report.rows.push(Row {
                n: number(&map, "n")?,
                k: number(&map, "k")?,
                kernel: map.get("kernel").cloned().unwrap_or_default(),
                reps: number(&map, "reps")?,
                ticks: number(&map, "ticks")?,
                stack: number(&map, "stack")?,
                saturated: number(&map, "saturated")? != 0,
            }),
            "detail" => {
                let key = (
                    number(&map, "n")?,
                    number(&map, "k")?,
                    map.get("kernel").cloned().unwrap_or_default(),
                );
                report.details.insert(key, map);
            }
            "check" => {
                report
                    .checks
                    .insert((number(&map, "n")?, number(&map, "k")?), map);
            }
            "done" => report.failures = Some(number(&map, "failures")?),
            _ => {}
        }
    }
    Ok(report)
}

impl Report {
    /// Instructions per call of `row`: overhead-corrected ticks times 40, over the repetitions.
    pub fn instructions(&self, row: &Row) -> f64 {
        let per_tick = self
            .setup
            .get("instructions_per_tick")
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(40.0);
        let overhead = self.overhead.get(&row.reps).copied().unwrap_or(0);
        row.ticks.saturating_sub(overhead) as f64 * per_tick / row.reps.max(1) as f64
    }

    /// The row of `kernel` at `(n, k)`; `floor` is the least of the three bare passes.
    pub fn row(&self, n: u64, k: u64, kernel: &str) -> Option<&Row> {
        let at = |name: &str| {
            self.rows
                .iter()
                .find(|r| r.n == n && r.k == k && r.kernel == name)
        };
        if kernel == "floor" {
            FLOOR_CANDIDATES
                .iter()
                .filter_map(|name| at(name))
                .min_by_key(|r| r.ticks * 1_000_000 / r.reps.max(1))
        } else {
            at(kernel)
        }
    }

    /// The measured sizes, in order.
    pub fn sizes(&self) -> Vec<(u64, u64)> {
        let mut sizes: Vec<(u64, u64)> = self.rows.iter().map(|r| (r.n, r.k)).collect();
        sizes.dedup();
        sizes
    }

    fn detail(&self, n: u64, k: u64, kernel: &str, key: &str) -> Option<&str> {
        self.details
            .get(&(n, k, kernel.to_string()))
            .and_then(|map| map.get(key))
            .map(String::as_str)
    }
}

/// Builds the benchmark binary, runs it under QEMU and returns its output.
pub fn measure(setup: &Setup) -> Result<String, String> {
    let dir = crate::root().join("tests/targets");
    println!("bench: building the benchmark binary for {TARGET} (release)");
    let mut command = setup.cross_cargo(&dir, "build");
    command.args(["--release", "--target", TARGET, "--features", "bench"]);
    command.args(["--bin", "bench"]);
    if setup.route == Route::DebianBuildStd {
        // The nalgebra baseline allocates, so `alloc` is built too (a later -Z replaces the
        // earlier `-Zbuild-std=core`).
        command.arg("-Zbuild-std=core,alloc");
    }
    let status = command
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("benchmark binary build failed".into());
    }

    let target_dir = match setup.route {
        Route::Rustup => dir.join("target"),
        Route::DebianBuildStd => dir.join("target/debian-build-std"),
    };
    let elf = target_dir.join(TARGET).join("release/bench");
    println!(
        "bench: running {} under QEMU {MACHINE} -icount",
        elf.display()
    );
    run_qemu(&elf)
}

fn run_qemu(elf: &Path) -> Result<String, String> {
    let mut qemu = Command::new("qemu-system-arm");
    qemu.args(["-machine", MACHINE, "-cpu", "cortex-m4"])
        .args(["-icount", "shift=0,sleep=off"]);
    crate::targets::run_semihosted(qemu, elf, "the benchmark", RUN_TIMEOUT)
}

/// Flash and static RAM of an ELF from its allocated sections: flash holds code, read-only
/// data and the initial values of `.data`; RAM holds `.data`, `.bss` and `.uninit`.
pub fn elf_sizes(elf: &Path) -> Result<(u64, u64), String> {
    section_sizes(elf).map(|(flash, ram, _)| (flash, ram))
}

/// Flash bytes, static RAM bytes, and every allocated section's name and size, largest first.
pub type SectionSizes = (u64, u64, Vec<(String, u64)>);

/// [`elf_sizes`] and every allocated section with its size, largest first.
pub fn section_sizes(elf: &Path) -> Result<SectionSizes, String> {
    use object::{Object, ObjectSection, SectionFlags, SectionKind};

    let bytes = std::fs::read(elf).map_err(|e| format!("cannot read {}: {e}", elf.display()))?;
    let file = object::File::parse(&*bytes).map_err(|e| e.to_string())?;
    let (mut flash, mut ram) = (0u64, 0u64);
    let mut sections = Vec::new();
    for section in file.sections() {
        let alloc = matches!(section.flags(), SectionFlags::Elf { sh_flags } if sh_flags & 2 != 0);
        if !alloc || section.size() == 0 {
            continue;
        }

        let in_ram = section.address() >= 0x2000_0000;
        match section.kind() {
            SectionKind::UninitializedData | SectionKind::UninitializedTls => ram += section.size(),
            SectionKind::Data if in_ram => {
                ram += section.size();
                flash += section.size();
            }
            _ if in_ram => ram += section.size(),
            _ => flash += section.size(),
        }
        sections.push((section.name().unwrap_or("").to_string(), section.size()));
    }

    sections.sort_by_key(|section| std::cmp::Reverse(section.1));
    Ok((flash, ram, sections))
}

fn kib(bytes: u64) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The instruction, ratio and floor tables as Markdown.
pub fn tables(report: &Report) -> String {
    let mut out = String::new();
    let sizes = report.sizes();

    out.push_str("Instructions per call (QEMU `-icount`: instructions, not cycles):\n\n");
    out.push_str("| n | k |");
    for kernel in KERNELS {
        let _ = write!(out, " {kernel} |");
    }
    out.push_str("\n| ---: | ---: |");
    out.push_str(&" ---: |".repeat(KERNELS.len()));
    out.push('\n');
    for &(n, k) in &sizes {
        let _ = write!(out, "| {n} | {k} |");
        for kernel in KERNELS {
            let cell = report
                .row(n, k, kernel)
                .map_or("-".into(), |r| thousands(report.instructions(r)));
            let _ = write!(out, " {cell} |");
        }
        out.push('\n');
    }

    out.push_str("\nRatio to the floor, and the speed-up of `nnls` over `lawson_hanson_full`:\n\n");
    out.push_str("| n | k |");
    for kernel in &KERNELS[1..] {
        let _ = write!(out, " {kernel} |");
    }
    out.push_str(" nnls speed-up | nnls iterations |\n| ---: | ---: |");
    out.push_str(&" ---: |".repeat(KERNELS.len() + 1));
    out.push('\n');
    for &(n, k) in &sizes {
        let floor = report.row(n, k, "floor").map(|r| report.instructions(r));
        let _ = write!(out, "| {n} | {k} |");
        for kernel in &KERNELS[1..] {
            let cell = match (report.row(n, k, kernel), floor) {
                (Some(r), Some(f)) if f > 0.0 => format!("{:.2}", report.instructions(r) / f),
                _ => "-".into(),
            };
            let _ = write!(out, " {cell} |");
        }
        let _ = write!(
            out,
            " {} |",
            speedup(report, n, k).map_or("-".into(), |s| format!("{s:.1}x"))
        );
        let iterations = report.detail(n, k, "nnls", "iterations").unwrap_or("-");
        let _ = writeln!(out, " {iterations} |");
    }

    out.push_str("\nThe floor is the least of three versions of the bare pass `z = Q^T y`:\n\n");
    out.push_str("| n | k | tight loop (floor) | `pass::multiply_add_pass` |");
    out.push_str(" `project` (also sums `y_i^2`) |\n");
    out.push_str("| ---: | ---: | ---: | ---: | ---: |\n");
    for &(n, k) in &sizes {
        let _ = write!(out, "| {n} | {k} |");
        for name in FLOOR_CANDIDATES {
            let cell = report
                .rows
                .iter()
                .find(|r| r.n == n && r.k == k && r.kernel == name)
                .map_or("-".into(), |r| thousands(report.instructions(r)));
            let _ = write!(out, " {cell} |");
        }
        out.push('\n');
    }
    out
}

/// The library SVD (singular values only) by the kernel and by nalgebra, as Markdown.
fn svd_table(report: &Report) -> String {
    let mut out = String::from(
        "| n | k | unmix (QR + one-sided Jacobi) | nalgebra (bidiagonal QR) | unmix / nalgebra \
         | max relative difference |\n| ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for (n, k) in report.sizes() {
        let [Some(ours), Some(theirs)] = SVD_KERNELS.map(|kernel| {
            report
                .rows
                .iter()
                .find(|r| r.n == n && r.k == k && r.kernel == kernel)
                .map(|r| report.instructions(r))
        }) else {
            continue;
        };
        let difference = report
            .details
            .get(&(n, k, SVD_KERNELS[0].to_string()))
            .and_then(|d| d.get("vs_nalgebra").cloned())
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(
            out,
            "| {n} | {k} | {} | {} | {:.2} | {difference} |",
            thousands(ours),
            thousands(theirs),
            ours / theirs
        );
    }
    out
}

fn speedup(report: &Report, n: u64, k: u64) -> Option<f64> {
    let nnls = report.instructions(report.row(n, k, "nnls")?);
    let lh = report.instructions(report.row(n, k, "lawson_hanson_full")?);
    (nnls > 0.0).then(|| lh / nnls)
}

/// Memory figures: ELF sizes, stack per kernel (fits and library SVDs), the working set of the
/// target size.
pub struct Memory {
    pub bench_elf: (u64, u64),
    pub firmware_elf: Option<(u64, u64)>,
    /// Deepest stack of each kernel over all sizes, and whether the paint ran out.
    pub stack: Vec<(String, u64, bool)>,
    /// Working set of `nnls` at the target size: spectrum, stack, result.
    pub working_set: Option<(u64, u64, u64)>,
    /// The prepared library at the target size (flash on a device).
    pub prepared_bytes: u64,
}

fn memory(report: &Report, bench_elf: (u64, u64), firmware_elf: Option<(u64, u64)>) -> Memory {
    let stack = KERNELS
        .iter()
        .chain(SVD_KERNELS.iter())
        .map(|&kernel| {
            let names: Vec<&str> = if kernel == "floor" {
                FLOOR_CANDIDATES.to_vec()
            } else {
                vec![kernel]
            };
            let rows = report
                .rows
                .iter()
                .filter(|r| names.contains(&r.kernel.as_str()));
            let deepest = rows.clone().map(|r| r.stack).max().unwrap_or(0);
            (
                kernel.to_string(),
                deepest,
                rows.clone().any(|r| r.saturated),
            )
        })
        .collect();

    let fit_bytes = report
        .setup
        .get("fit_bytes")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let working_set = report
        .row(TARGET_N, TARGET_K, "nnls")
        .map(|r| (TARGET_N * 4, r.stack, fit_bytes));
    let prepared_bytes = 4 * (TARGET_N * TARGET_K + TARGET_K * TARGET_K + 2 * TARGET_K);
    Memory {
        bench_elf,
        firmware_elf,
        stack,
        working_set,
        prepared_bytes,
    }
}

fn memory_table(memory: &Memory) -> String {
    let mut out = String::from("| item | flash | static RAM |\n| --- | ---: | ---: |\n");
    let (flash, ram) = memory.bench_elf;
    let _ = writeln!(
        out,
        "| benchmark ELF (buffers for 4096 x 16, 1.5 MiB heap for nalgebra) | {} | {} |",
        kib(flash),
        kib(ram)
    );
    match memory.firmware_elf {
        Some((flash, ram)) => {
            let _ = writeln!(
                out,
                "| firmware ELF (`unmix-firmware`) | {} | {} |",
                kib(flash),
                kib(ram)
            );
        }
        None => out.push_str("| firmware ELF | not built | not built |\n"),
    }
    let _ = writeln!(
        out,
        "| prepared library, n = {TARGET_N}, k = {TARGET_K} (Q, R, scales) | {} | - |",
        kib(memory.prepared_bytes)
    );

    out.push_str("\n| kernel | deepest stack (bytes, all sizes) |\n| --- | ---: |\n");
    for (kernel, deepest, saturated) in &memory.stack {
        let mark = if *saturated { " (paint used up)" } else { "" };
        let _ = writeln!(out, "| {kernel} | {deepest}{mark} |");
    }

    if let Some((spectrum, stack, fit)) = memory.working_set {
        let _ = writeln!(
            out,
            "\nWorking set of one NNLS fit at n = {TARGET_N}, k = {TARGET_K}: spectrum {spectrum} \
             bytes (f32) + stack {stack} + result {fit} = {} bytes ({}), against {} of RAM; \
             the prepared library stays in flash.",
            spectrum + stack + fit,
            kib(spectrum + stack + fit),
            kib(TARGET_RAM)
        );
    }
    out
}

/// Agreement of the baselines with the kernel, one line per size.
fn checks_table(report: &Report) -> String {
    let mut out = String::from(
        "| n | k | LH vs nnls | SVD vs projection | absent phase (lstsq / max) | ok |\n\
         | ---: | ---: | ---: | ---: | ---: | :---: |\n",
    );
    for (&(n, k), map) in &report.checks {
        let get = |key: &str| map.get(key).map_or("-", String::as_str);
        let _ = writeln!(
            out,
            "| {n} | {k} | {} | {} | {} | {} |",
            get("lh_vs_nnls"),
            get("svd_vs_lstsq"),
            get("absent_lstsq"),
            if get("ok") == "1" { "yes" } else { "NO" }
        );
    }
    out
}

/// The design targets at n = 2048, k = 8, each as (description, measured, met).
fn targets(report: &Report, memory: &Memory) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    let floor = report
        .row(TARGET_N, TARGET_K, "floor")
        .map(|r| report.instructions(r));
    let nnls = report
        .row(TARGET_N, TARGET_K, "nnls")
        .map(|r| report.instructions(r));
    if let (Some(floor), Some(nnls)) = (floor, nnls) {
        let ratio = nnls / floor;
        out.push((
            format!("nnls within {TARGET_RATIO}x the floor (n = {TARGET_N}, k = {TARGET_K})"),
            format!("{} / {} = {ratio:.2}x", thousands(nnls), thousands(floor)),
            ratio <= TARGET_RATIO,
        ));
    }
    if let Some(speedup) = speedup(report, TARGET_N, TARGET_K) {
        out.push((
            format!("nnls at least {TARGET_SPEEDUP}x fewer instructions than lawson_hanson_full"),
            format!("{speedup:.1}x"),
            speedup >= TARGET_SPEEDUP,
        ));
    }
    if let Some((spectrum, stack, fit)) = memory.working_set {
        let total = spectrum + stack + fit;
        out.push((
            format!(
                "working set within {} of RAM including stack",
                kib(TARGET_RAM)
            ),
            format!("{total} bytes ({})", kib(total)),
            total <= TARGET_RAM,
        ));
    }
    out
}

/// Runs the host throughput benchmark on `spectra` spectra and returns its printed lines.
fn host_throughput(spectra: u64) -> Result<Vec<String>, String> {
    let root = crate::root();
    if !root.join("host/benches/throughput.rs").exists() {
        return Err("host/benches/throughput.rs does not exist".into());
    }
    println!(
        "bench: host throughput, {spectra} spectra (cargo bench -p unmix-host --bench throughput)"
    );
    let output = Command::new(crate::toolchain::cargo())
        .current_dir(&root)
        .env("UNMIX_BENCH_SPECTRA", spectra.to_string())
        .args(["bench", "-p", "unmix-host", "--bench", "throughput"])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo bench: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "host throughput benchmark exited with {}",
            output.status
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}

fn sizes_json((flash, ram): (u64, u64)) -> Value {
    json!({ "flash_bytes": flash, "static_ram_bytes": ram })
}

/// One JSON row per size and kernel of `kernels`; a kernel missing at some size is an error,
/// so a reader of the document can count on every row the benchmark promises.
fn kernel_rows(report: &Report, kernels: &[&str]) -> Result<Vec<Value>, String> {
    let mut rows = Vec::new();
    for (n, k) in report.sizes() {
        let floor = report.row(n, k, "floor").map(|r| report.instructions(r));
        for &kernel in kernels {
            let row = report
                .row(n, k, kernel)
                .ok_or_else(|| format!("the benchmark printed no `{kernel}` row for {n} x {k}"))?;
            let instructions = report.instructions(row);
            let mut entry = json!({
                "target": TARGET,
                "machine": MACHINE,
                "n": n,
                "k": k,
                "kernel": kernel,
                "instructions": instructions.round() as u64,
                "ratio_to_floor": floor.map(|f| instructions / f),
                "reps": row.reps,
                "ticks": row.ticks,
                "resolution_instructions": 40.0 / row.reps as f64,
                "stack_bytes": row.stack,
            });
            if kernel == "floor" {
                entry["floor_source"] = json!(row.kernel);
                for name in FLOOR_CANDIDATES {
                    if let Some(r) = report
                        .rows
                        .iter()
                        .find(|r| r.n == n && r.k == k && r.kernel == name)
                    {
                        entry[name] = json!(report.instructions(r).round() as u64);
                    }
                }
            }
            if let Some(details) = report.details.get(&(n, k, kernel.to_string())) {
                for (key, value) in details {
                    if !matches!(key.as_str(), "n" | "k" | "kernel") {
                        entry[key] = value.parse::<u64>().map_or(json!(value), |v| json!(v));
                    }
                }
            }
            if kernel == "nnls" {
                entry["speedup_over_lawson_hanson_full"] = json!(speedup(report, n, k));
            }
            rows.push(entry);
        }
    }
    Ok(rows)
}

/// The whole JSON document: `mcu` holds the seven fitting kernels of [`KERNELS`] (and only
/// those), `svd` the library SVD rows of [`SVD_KERNELS`] in the same form.
fn json(report: &Report, memory: &Memory, host: &Value) -> Result<Value, String> {
    let mcu = kernel_rows(report, &KERNELS)?;
    let svd = kernel_rows(report, &SVD_KERNELS)?;

    let checks: Vec<Value> = report
        .checks
        .iter()
        .map(|(&(n, k), map)| {
            let mut entry = json!({ "n": n, "k": k });
            for (key, value) in map {
                if !matches!(key.as_str(), "n" | "k") {
                    entry[key] = value.parse::<f64>().map_or(json!(value), |v| json!(v));
                }
            }
            entry
        })
        .collect();

    let stack: serde_json::Map<String, Value> = memory
        .stack
        .iter()
        .map(|(kernel, deepest, _)| (kernel.clone(), json!(deepest)))
        .collect();
    Ok(json!({
        "units": "instructions under QEMU -icount shift=0 (not cycles)",
        "mcu": mcu,
        "svd": svd,
        "checks": checks,
        "memory": {
            "bench_elf": sizes_json(memory.bench_elf),
            "firmware_elf": memory.firmware_elf.map(sizes_json),
            "stack_bytes": stack,
            "working_set_2048x8": memory.working_set.map(|(s, st, f)| json!({
                "spectrum_bytes": s, "stack_bytes": st, "fit_bytes": f, "total_bytes": s + st + f,
            })),
            "prepared_library_2048x8_bytes": memory.prepared_bytes,
        },
        "host": host,
        "targets": targets(report, memory).iter().map(|(what, measured, met)| json!({
            "target": what, "measured": measured, "met": met,
        })).collect::<Vec<_>>(),
    }))
}

/// Runs the kernel benchmark and prints its tables; `firmware` is the firmware ELF, if built.
pub fn run(setup: &Setup, options: &Options, firmware: Option<&Path>) -> Result<(), String> {
    let output = measure(setup)?;
    let report = parse(&output)?;
    let elf = match setup.route {
        Route::Rustup => crate::root().join("tests/targets/target"),
        Route::DebianBuildStd => crate::root().join("tests/targets/target/debian-build-std"),
    }
    .join(TARGET)
    .join("release/bench");

    let firmware_elf = firmware.filter(|p| p.exists()).map(elf_sizes).transpose()?;
    let memory = memory(&report, elf_sizes(&elf)?, firmware_elf);

    println!("\n## Kernels on Cortex-M4F (QEMU {MACHINE}, -icount shift=0,sleep=off)\n");
    println!("{}", tables(&report));
    println!("Baselines against the kernel (max |difference| / max |coefficient|):\n");
    println!("{}", checks_table(&report));
    println!("Library SVD on the device, singular values only (instructions, not cycles):\n");
    println!("{}", svd_table(&report));
    println!("Memory:\n");
    println!("{}", memory_table(&memory));

    println!("Design targets:\n");
    for (what, measured, met) in targets(&report, &memory) {
        println!(
            "- {what}: {measured}: {}",
            if met { "met" } else { "MISSED" }
        );
    }

    let host = match options.host {
        Some(spectra) => {
            let lines = host_throughput(spectra)?;
            println!("\nHost throughput ({spectra} spectra):");
            for line in &lines {
                println!("  {line}");
            }
            json!({ "spectra": spectra, "output": lines })
        }
        None => {
            println!(
                "\nHost throughput: not run; `cargo xtask bench --host [SPECTRA]` or \
                 `cargo bench -p unmix-host --bench throughput`."
            );
            Value::Null
        }
    };

    if let Some(path) = &options.json {
        let document = json(&report, &memory, &host)?;
        let text = serde_json::to_string_pretty(&document).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n")
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("bench: wrote {}", path.display());
    }

    match report.failures {
        Some(0) => Ok(()),
        Some(failed) => Err(format!(
            "{failed} baseline checks failed (see the table above)"
        )),
        None => Err("the benchmark did not finish".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
bench target=thumbv7em-none-eabihf machine=mps2-an386 instructions_per_tick=40 fit_bytes=264
overhead reps=16 ticks=1 stack=0
overhead reps=2 ticks=0 stack=0
row n=2048 k=8 kernel=floor_tight reps=16 ticks=1601 stack=64 saturated=0
row n=2048 k=8 kernel=floor_multiply_add_pass reps=16 ticks=4001 stack=8 saturated=0
row n=2048 k=8 kernel=floor_project reps=16 ticks=1801 stack=96 saturated=0
row n=2048 k=8 kernel=nnls reps=16 ticks=2001 stack=7740 saturated=0
detail n=2048 k=8 kernel=nnls iterations=7 support=253 status=Converged
row n=2048 k=8 kernel=lawson_hanson_full reps=2 ticks=3000 stack=80 saturated=0
check n=2048 k=8 lh_vs_nnls=2e-6 svd_vs_lstsq=2e-6 ok=1
done failures=0
";

    #[test]
    fn floor_is_the_least_pass_and_overhead_is_subtracted() {
        let report = parse(SAMPLE).unwrap();
        let floor = report.row(2048, 8, "floor").unwrap();

        assert_eq!(floor.kernel, "floor_tight");
        assert_eq!(report.instructions(floor), 4000.0);
        assert_eq!(report.failures, Some(0));
    }

    #[test]
    fn speedup_and_targets_follow_from_the_rows() {
        let report = parse(SAMPLE).unwrap();
        let memory = memory(&report, (0, 0), None);
        let targets = targets(&report, &memory);

        assert_eq!(speedup(&report, 2048, 8), Some(12.0));
        assert_eq!(targets.len(), 3);
        assert!(targets.iter().all(|(_, _, met)| *met), "{targets:?}");
    }

    #[test]
    fn options_take_a_json_file_and_an_optional_count() {
        let args: Vec<String> = ["--host", "--json", "out.json"].map(String::from).to_vec();
        let options = Options::parse(&args).unwrap();

        assert_eq!(options.host, Some(HOST_SPECTRA));
        assert_eq!(options.json, Some(PathBuf::from("out.json")));
    }
}
