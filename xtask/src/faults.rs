//! Fault injection on the firmware's serial link: the real firmware in QEMU, driven through a
//! layer on the host's side of the TCP socket that damages what it sends, with a fixed seed.
//!
//! # What is injected
//!
//! - Inside request frames, at [`BYTE_RATE`] per byte (at least one per damaged frame):
//!   bytes dropped, bytes flipped (XOR with a random non-zero mask, which may leave `0x00`),
//!   bytes duplicated.
//! - Frames cut short, then either closed by a delimiter or run straight into the next
//!   frame; bursts of random line noise (about one byte in 16 is `0x00`), once longer than
//!   the firmware's frame limit.
//! - The host going away ([`Device::reconnect`]): in the middle of a frame; right after a
//!   complete request, coming back at once or after [`AWAY`]; and with a reply left unread
//!   in its socket (Linux then answers the close with a reset, and QEMU drops what it had
//!   not yet read). Each time the host comes back, sends a `0x00` and a valid request.
//! - A flood: [`FLOOD`] fits written back to back before any reply is read.
//!
//! # The oracle
//!
//! Every byte written goes through a mirror of the firmware's own frame decoder with the
//! firmware's frame limit. Each run of bytes between two `0x00` is one frame to the
//! firmware and gets exactly one reply, in order ([`unmix_protocol`]'s design):
//!
//! - a request frame that crossed the wire intact: its own answer, a fit bit for bit equal
//!   to the host kernel's, an information reply whose fit count and library are right;
//! - any other run: the error reply the mirror predicts, with no sequence number (`BadCrc`
//!   with the very CRCs, `BadFrame`, `FrameTooLong`); never a result. A flip to `0x00`
//!   splits a frame into two runs, so two error replies; a run the mirror would accept
//!   although it was damaged (a CRC collision) fails the check before anything is sent;
//! - after the host went away, replies still owed may come on the new connection or not at
//!   all (never twice, never wrong), and the partial frame it left costs one error reply or
//!   nothing.
//!
//! # QEMU's socket, as measured (QEMU 7.2)
//!
//! `-serial tcp:...,server=on,wait=on` waits for the first client only. When the client
//! closes, QEMU first passes every byte it had received to the UART (as the UART takes
//! them), then drops the connection and accepts the next client; the guest keeps running,
//! and what the UART sends meanwhile is discarded. A second client's connection opens at
//! once (the listening socket stays open) but is served only after the first has gone, so a
//! quick reconnect gets the replies the firmware sends after that point, including the reply
//! to a request sent just before the close; a host that stays away loses that reply, and the
//! firmware does not wait for it to be taken. Neither `wait=off` nor `reconnect=` is needed
//! (`reconnect=` applies to client sockets only). QEMU lets the UART receive a byte only once the
//! previous one was read, so a flood waits in TCP buffers instead of overrunning the UART; a
//! real board's UART without FIFO would overrun instead.
//!
//! The firmware must never hang (a reply overdue by 30 s fails the check), never reset (its
//! fit count and uploaded library survive), and its stack high-water mark after the run
//! must not exceed the one measured after a clean warm-up.

use std::collections::VecDeque;
use std::path::Path;
use std::time::{Duration, Instant};

use unmix::Background;
use unmix_host::fitting::{FitSettings, MethodName};
use unmix_host::stream::{Device, DeviceError, record};
use unmix_protocol::{
    ErrorKind, ErrorReply, FrameDecoder, LibraryInfo, Reply, Request, SampleFormat,
    io::parse_request,
};

use crate::device::{Library, frame, host_record, same_bits, settings, synthetic};

/// Seed of every random choice of the run.
const SEED: u64 = 0x6661_756c_7473;

/// Chance per byte that a damaged frame has a byte dropped, flipped or duplicated.
const BYTE_RATE: f64 = 1.0 / 128.0;

/// Rounds of mixed intact and damaged requests, and requests per round.
const ROUNDS: usize = 32;
const PER_ROUND: usize = 8;

/// Times each way of going away is tried.
const LEAVES: usize = 4;

/// How long the host stays away when it does not come back at once.
const AWAY: Duration = Duration::from_millis(500);

/// Fits written back to back in the flood.
const FLOOD: usize = 64;

/// The library: channels, phases, background.
const CHANNELS: usize = 256;
const PHASES: usize = 4;

/// The ways the link is damaged, in the order of the summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    Drop,
    Flip,
    Duplicate,
    CutClosed,
    CutMerged,
    Garbage,
    Overlong,
    LeftMidFrame,
    LeftBeforeReply,
    LeftAway,
    LeftUnread,
}

impl Fault {
    const ALL: [Fault; 11] = [
        Fault::Drop,
        Fault::Flip,
        Fault::Duplicate,
        Fault::CutClosed,
        Fault::CutMerged,
        Fault::Garbage,
        Fault::Overlong,
        Fault::LeftMidFrame,
        Fault::LeftBeforeReply,
        Fault::LeftAway,
        Fault::LeftUnread,
    ];

    fn label(self) -> &'static str {
        match self {
            Fault::Drop => "bytes dropped in a frame",
            Fault::Flip => "bytes flipped in a frame",
            Fault::Duplicate => "bytes duplicated in a frame",
            Fault::CutClosed => "frame cut short, then 0x00",
            Fault::CutMerged => "frame cut short, next frame follows",
            Fault::Garbage => "burst of line noise",
            Fault::Overlong => "noise longer than a frame",
            Fault::LeftMidFrame => "host left mid-frame",
            Fault::LeftBeforeReply => "host left before a reply",
            Fault::LeftAway => "host away while a reply is sent",
            Fault::LeftUnread => "host left, reply unread (reset)",
        }
    }

    fn index(self) -> usize {
        Fault::ALL.iter().position(|&f| f == self).unwrap_or(0)
    }
}

/// Counts for one kind of fault.
#[derive(Clone, Copy, Default)]
struct Count {
    events: u64,
    bytes: u64,
    errors: u64,
    silent: u64,
    stale: u64,
}

/// A request that was sent, with what its answer must be.
enum Sent {
    Fit {
        seq: u32,
        settings: FitSettings,
        values: Vec<f32>,
    },
    Info,
}

/// A reply the firmware owes, in order.
enum Owed {
    /// The answer to request `index`, which crossed the wire intact; `fits` is the firmware's
    /// fit count once it has carried out the request.
    Answer { index: usize, fits: u32 },
    /// Exactly this error reply, for a run of bytes that `fault` damaged.
    Refusal { reply: ErrorReply, fault: Fault },
    /// Some frame error, for a partial frame the host left behind.
    AnyFrameError { fault: Fault },
}

/// A reply owed; `left` names how the host went away after the request, when it did (the
/// reply may then not come).
struct Pending {
    owed: Owed,
    left: Option<Fault>,
}

/// What a run of bytes between two delimiters is made of.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tag {
    Intact(usize),
    Fault(Fault),
}

/// The host's side of the link: the bytes to send, the mirror of the firmware's decoder, and
/// the replies owed.
struct Wire {
    out: Vec<u8>,
    segment: Vec<u8>,
    tags: Vec<Tag>,
    decoder_len: usize,
    sent: Vec<Sent>,
    owed: VecDeque<Pending>,
    fits: u32,
    intact: u64,
    swallowed: u64,
    abandoned: u64,
}

impl Wire {
    fn new(max_frame: u32) -> Self {
        Wire {
            out: Vec::new(),
            segment: Vec::new(),
            tags: Vec::new(),
            decoder_len: max_frame as usize - 1,
            sent: Vec::new(),
            owed: VecDeque::new(),
            fits: 0,
            intact: 0,
            swallowed: 0,
            abandoned: 0,
        }
    }

    /// Queues `bytes`, which belong to `tag`, and works out the replies they cause.
    fn push(&mut self, bytes: &[u8], tag: Tag) -> Result<(), String> {
        if let Tag::Intact(_) = tag {
            self.intact += 1;
        }
        self.out.extend_from_slice(bytes);
        for &byte in bytes {
            if self.tags.last() != Some(&tag) {
                self.tags.push(tag);
            }
            if byte != 0 {
                self.segment.push(byte);
            } else {
                self.close_segment()?;
            }
        }
        Ok(())
    }

    /// A delimiter: the firmware answers the run of bytes before it, if any.
    fn close_segment(&mut self) -> Result<(), String> {
        let tags = std::mem::take(&mut self.tags);
        if self.segment.is_empty() {
            return Ok(());
        }

        let mut buf = vec![0u8; self.decoder_len];
        let mut decoder = FrameDecoder::new(&mut buf);
        let outcome = self
            .segment
            .iter()
            .chain(&[0])
            .find_map(|&b| decoder.push(b).map(|r| r.map(<[u8]>::to_vec)));
        self.segment.clear();

        let fault = tags.iter().find_map(|tag| match tag {
            Tag::Fault(fault) => Some(*fault),
            Tag::Intact(_) => None,
        });
        let Some(fault) = fault else {
            let [Tag::Intact(index)] = tags[..] else {
                return Err("two intact frames ran together".into());
            };
            if let Some(Sent::Fit { .. }) = self.sent.get(index) {
                self.fits += 1;
            }
            self.owe(Owed::Answer {
                index,
                fits: self.fits,
            });
            return Ok(());
        };

        self.swallowed += tags.iter().filter(|t| matches!(t, Tag::Intact(_))).count() as u64;
        let reply = match outcome {
            Some(Ok(message)) => match parse_request(&message) {
                Ok(_) => return Err(format!("a frame damaged by {fault:?} passes its CRC")),
                Err(reply) => reply,
            },
            Some(Err(error)) => ErrorReply {
                seq: None,
                kind: error.into(),
            },
            None => return Err("the mirror decoder ended no frame".into()),
        };
        self.owe(Owed::Refusal { reply, fault });
        Ok(())
    }

    fn owe(&mut self, owed: Owed) {
        self.owed.push_back(Pending { owed, left: None });
    }

    /// The host went away: what is owed may or may not come, and the partial frame it
    /// left may cost an error reply.
    fn abandon(&mut self, fault: Fault) {
        for pending in self.owed.iter_mut().filter(|p| p.left.is_none()) {
            pending.left = Some(fault);
            if let Owed::Answer { .. } = pending.owed {
                self.abandoned += 1;
            }
        }
        if !self.segment.is_empty() {
            self.segment.clear();
            self.tags.clear();
            self.owed.push_back(Pending {
                owed: Owed::AnyFrameError { fault },
                left: Some(fault),
            });
        }
    }

    /// Sends the queued bytes.
    fn flush(&mut self, device: &mut Device) -> Result<(), String> {
        let bytes = std::mem::take(&mut self.out);
        device.send_raw(&bytes).map_err(|e| format!("sending: {e}"))
    }
}

/// The fault-injecting layer: seeded choices and the tally of what it did.
struct Injector {
    rng: synthetic::Lcg,
    counts: [Count; Fault::ALL.len()],
}

impl Injector {
    fn below(&mut self, n: usize) -> usize {
        ((self.rng.next_unit() * n as f64) as usize).min(n.saturating_sub(1))
    }

    /// Where to cut a frame of `len` bytes: after its first byte, before its delimiter.
    fn cut_point(&mut self, len: usize) -> usize {
        1 + self.below(len - 2)
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.next_unit() < p
    }

    fn count(&mut self, fault: Fault) -> &mut Count {
        &mut self.counts[fault.index()]
    }

    /// `frame` (delimiter last) damaged by a byte fault at [`BYTE_RATE`], at least once.
    fn damage_bytes(&mut self, frame: &[u8], fault: Fault) -> Vec<u8> {
        let body = &frame[..frame.len() - 1];
        let forced = self.below(body.len());
        let mut out = Vec::with_capacity(frame.len() + 8);
        let mut touched = 0;

        for (i, &byte) in body.iter().enumerate() {
            if !(i == forced || self.chance(BYTE_RATE)) {
                out.push(byte);
                continue;
            }
            touched += 1;
            match fault {
                Fault::Drop => {}
                Fault::Flip => out.push(byte ^ (1 + self.below(255)) as u8),
                _ => out.extend([byte, byte]),
            }
        }
        out.push(0);

        let count = self.count(fault);
        count.events += 1;
        count.bytes += touched;
        out
    }

    /// Random line noise of `len` bytes, each a delimiter with chance `zeros`, and one more
    /// delimiter at the end.
    fn noise(&mut self, len: usize, zeros: f64) -> Vec<u8> {
        let mut out: Vec<u8> = (0..len)
            .map(|_| {
                if self.chance(zeros) {
                    0
                } else {
                    1 + self.below(255) as u8
                }
            })
            .collect();
        out.push(0);
        out
    }
}

/// Everything a run of the check needs.
struct Run<'a> {
    device: Device,
    library: &'a Library,
    loaded: LibraryInfo,
    wire: Wire,
    faults: Injector,
    methods: Vec<FitSettings>,
    frames: synthetic::Lcg,
    seq: u32,
    answered: u64,
    max_frame: usize,
    stack_budget: u32,
    damaged_replies: u64,
}

impl Run<'_> {
    /// The next valid fit request: its frame and its index among the requests sent.
    fn next_fit(&mut self) -> Result<(Vec<u8>, usize), String> {
        let values = self
            .library
            .frame(&mut self.frames, 400.0 + f64::from(self.seq % 7) * 300.0);
        let settings = self.methods[self.seq as usize % self.methods.len()];
        let format = if self.seq.is_multiple_of(2) {
            SampleFormat::U16
        } else {
            SampleFormat::F32
        };

        let mut samples = vec![0u8; values.len() * format.size()];
        unmix_protocol::encode_samples(format, &values, &mut samples)
            .ok_or("a simulated count does not fit u16")?;
        let request = match unmix_host::stream::fit_request(self.seq, &settings, &samples) {
            Request::Fit(mut fit) => {
                fit.format = format;
                Request::Fit(fit)
            }
            other => other,
        };
        let bytes = frame(&request);

        self.wire.sent.push(Sent::Fit {
            seq: self.seq,
            settings,
            values,
        });
        self.seq += 1;
        Ok((bytes, self.wire.sent.len() - 1))
    }

    fn send_intact(&mut self, bytes: &[u8], index: usize) -> Result<(), String> {
        self.wire.push(bytes, Tag::Intact(index))
    }

    fn send_info(&mut self) -> Result<(), String> {
        self.wire.sent.push(Sent::Info);
        let index = self.wire.sent.len() - 1;
        self.wire.push(&frame(&Request::Info), Tag::Intact(index))
    }

    /// Reads replies until nothing mandatory is owed; every reply must be the next one owed.
    fn settle(&mut self) -> Result<(), String> {
        // Each time the host left it can have cut at most one reply in two: more damaged
        // replies than that (a link that went away for good, say) end the check.
        let mut cut_replies_possible = self.wire.owed.iter().filter(|p| p.left.is_some()).count();
        while self.wire.owed.iter().any(|p| p.left.is_none()) {
            let stale = self.wire.owed.front().is_some_and(|p| p.left.is_some());
            let reply = match self.device.receive() {
                Ok(reply) => reply,
                Err(DeviceError::Link(_)) if stale && cut_replies_possible > 0 => {
                    // A reply cut in two by the host leaving.
                    cut_replies_possible -= 1;
                    self.damaged_replies += 1;
                    continue;
                }
                Err(e) => return Err(format!("waiting for a reply: {e}")),
            };
            self.take(reply)?;
        }
        Ok(())
    }

    /// Matches `reply` against what is owed, skipping replies that may not come.
    fn take(&mut self, reply: Reply) -> Result<(), String> {
        while let Some(pending) = self.wire.owed.pop_front() {
            let matched = self.matches(&pending.owed, &reply)?;
            let counts = &mut self.faults.counts;
            match (matched, pending.left, &pending.owed) {
                (true, None, Owed::Answer { .. }) => self.answered += 1,
                (true, Some(left), Owed::Answer { .. }) => counts[left.index()].stale += 1,
                (true, _, Owed::Refusal { fault, .. } | Owed::AnyFrameError { fault }) => {
                    counts[fault.index()].errors += 1
                }
                (false, Some(left), _) => counts[left.index()].silent += 1,
                (false, None, owed) => {
                    return Err(format!("expected {}, got {reply:?}", self.describe(owed)));
                }
            }
            if matched {
                return Ok(());
            }
        }
        Err(format!("a reply nothing was owed for: {reply:?}"))
    }

    /// Whether `reply` is the one `owed`; `Err` for a result that is wrong in any bit.
    fn matches(&self, owed: &Owed, reply: &Reply) -> Result<bool, String> {
        match (owed, reply) {
            (Owed::Answer { index, .. }, Reply::Fit(result)) => {
                let Some(Sent::Fit {
                    seq,
                    settings,
                    values,
                }) = self.wire.sent.get(*index)
                else {
                    return Ok(false);
                };
                if result.seq != *seq {
                    return Ok(false);
                }
                let mine = record(result, self.library.shape.phases);
                let host = host_record(self.library, settings, values)?;
                if same_bits(&mine, &host) {
                    Ok(true)
                } else {
                    Err(format!(
                        "fit {seq}: device {mine:?} differs from host {host:?}"
                    ))
                }
            }
            (Owed::Answer { index, fits }, Reply::Info(info)) => {
                if !matches!(self.wire.sent.get(*index), Some(Sent::Info)) {
                    return Ok(false);
                }
                if info.fits != *fits || info.library != Some(self.loaded) {
                    return Err(format!(
                        "the firmware reset or lost state: {} fits (expected {fits}), library \
                         {:?}",
                        info.fits, info.library
                    ));
                }
                if info.stack.used > self.stack_budget {
                    return Err(format!(
                        "stack high-water mark {} bytes over the budget of {}",
                        info.stack.used, self.stack_budget
                    ));
                }
                Ok(true)
            }
            (Owed::Refusal { reply: wanted, .. }, Reply::Error(got)) => Ok(wanted == got),
            (Owed::AnyFrameError { .. }, Reply::Error(got)) => Ok(got.seq.is_none()
                && matches!(
                    got.kind,
                    ErrorKind::BadFrame | ErrorKind::BadCrc { .. } | ErrorKind::FrameTooLong { .. }
                )),
            _ => Ok(false),
        }
    }

    fn describe(&self, owed: &Owed) -> String {
        match owed {
            Owed::Answer { index, .. } => match self.wire.sent.get(*index) {
                Some(Sent::Fit { seq, .. }) => format!("the result of fit {seq}"),
                _ => "the device information".into(),
            },
            Owed::Refusal { reply, fault } => format!("{reply:?} (after {fault:?})"),
            Owed::AnyFrameError { fault } => format!("a frame error (after {fault:?})"),
        }
    }

    /// Rounds of intact requests mixed with damaged ones and noise.
    fn byte_faults(&mut self) -> Result<(), String> {
        let overlong = self.faults.noise(self.max_frame + 100, 0.0);
        self.faults.count(Fault::Overlong).events += 1;
        self.faults.count(Fault::Overlong).bytes += overlong.len() as u64;
        self.wire.push(&overlong, Tag::Fault(Fault::Overlong))?;

        for _ in 0..ROUNDS {
            for _ in 0..PER_ROUND {
                let (bytes, index) = self.next_fit()?;
                if self.faults.chance(0.45) {
                    self.send_intact(&bytes, index)?;
                    continue;
                }

                let fault = [
                    Fault::Drop,
                    Fault::Flip,
                    Fault::Duplicate,
                    Fault::CutClosed,
                    Fault::CutMerged,
                    Fault::Garbage,
                ][self.faults.below(6)];
                match fault {
                    Fault::Drop | Fault::Flip | Fault::Duplicate => {
                        let damaged = self.faults.damage_bytes(&bytes, fault);
                        self.wire.push(&damaged, Tag::Fault(fault))?;
                    }
                    Fault::CutClosed | Fault::CutMerged => {
                        let cut = self.faults.cut_point(bytes.len());
                        let mut part = bytes[..cut].to_vec();
                        if fault == Fault::CutClosed {
                            part.push(0);
                        }
                        let count = self.faults.count(fault);
                        count.events += 1;
                        count.bytes += (bytes.len() - cut) as u64;
                        self.wire.push(&part, Tag::Fault(fault))?;
                    }
                    _ => {
                        let len = 1 + self.faults.below(96);
                        let noise = self.faults.noise(len, 1.0 / 16.0);
                        let count = self.faults.count(fault);
                        count.events += 1;
                        count.bytes += noise.len() as u64;
                        self.wire.push(&noise, Tag::Fault(fault))?;
                        self.send_intact(&bytes, index)?;
                    }
                }
            }
            self.end_round()?;
        }
        Ok(())
    }

    /// The host goes away in four ways and comes back each time.
    fn leaving(&mut self) -> Result<(), String> {
        let ways = [
            Fault::LeftMidFrame,
            Fault::LeftBeforeReply,
            Fault::LeftAway,
            Fault::LeftUnread,
        ];
        for round in 0..LEAVES * ways.len() {
            let fault = ways[round % ways.len()];
            let (bytes, index) = self.next_fit()?;
            match fault {
                Fault::LeftMidFrame => {
                    let cut = self.faults.cut_point(bytes.len());
                    self.wire.push(&bytes[..cut], Tag::Fault(fault))?;
                }
                Fault::LeftBeforeReply | Fault::LeftAway => self.send_intact(&bytes, index)?,
                _ => {
                    // The information reply lands in the socket and stays unread.
                    self.send_info()?;
                    self.wire.flush(&mut self.device)?;
                    std::thread::sleep(Duration::from_millis(300));
                    let cut = self.faults.cut_point(bytes.len());
                    self.wire.push(&bytes[..cut], Tag::Fault(fault))?;
                }
            }
            self.wire.flush(&mut self.device)?;
            self.faults.count(fault).events += 1;

            let away = if fault == Fault::LeftAway {
                AWAY
            } else {
                Duration::ZERO
            };
            self.device
                .reconnect(away)
                .map_err(|e| format!("reconnecting: {e}"))?;
            self.wire.abandon(fault);
            self.wire.push(&[0], Tag::Fault(fault))?;
            let (bytes, index) = self.next_fit()?;
            self.send_intact(&bytes, index)?;
            self.end_round()?;
        }
        Ok(())
    }

    /// [`FLOOD`] fits written back to back, then every reply read.
    fn flood(&mut self) -> Result<(), String> {
        for _ in 0..FLOOD {
            let (bytes, index) = self.next_fit()?;
            self.send_intact(&bytes, index)?;
        }
        self.end_round()
    }

    /// Ends a round with an information request, sends it all and reads every reply owed.
    fn end_round(&mut self) -> Result<(), String> {
        self.send_info()?;
        self.wire.flush(&mut self.device)?;
        self.settle()
    }
}

/// Check: the firmware in QEMU under injected link faults, with a fixed seed. Every intact
/// request gets its one exact answer in order, every damaged run of bytes the error reply
/// the protocol predicts (or, after the host left, possibly nothing), never a wrong result;
/// no hang, no reset, no stack growth. Returns the number of replies checked.
pub fn check(elf: &Path) -> Result<u64, String> {
    let started = Instant::now();
    let library = Library::synthetic(CHANNELS, PHASES, Background::Chebyshev { degree: 1 }, 77);
    let mut device = Device::qemu(elf, &[]).map_err(|e| e.to_string())?;
    let info = device.info().map_err(|e| e.to_string())?;
    let loaded = device.upload(&library.bytes()).map_err(|e| e.to_string())?;
    if loaded.id != library.view().library_id() {
        return Err("uploaded library id differs from the host's".into());
    }

    let methods = vec![
        settings(MethodName::Nnls, None),
        settings(MethodName::Fcls, None),
        settings(MethodName::Lstsq, None),
        settings(MethodName::Ridge, Some(0.5)),
    ];
    let mut run = Run {
        device,
        library: &library,
        loaded,
        wire: Wire::new(info.max_frame),
        faults: Injector {
            rng: synthetic::Lcg(SEED),
            counts: [Count::default(); Fault::ALL.len()],
        },
        methods,
        frames: synthetic::Lcg(SEED ^ 1),
        seq: 0,
        answered: 0,
        max_frame: info.max_frame as usize,
        stack_budget: info.stack.size,
        damaged_replies: 0,
    };

    // Warm-up without faults: every method and one frame error, then the budget.
    for _ in 0..run.methods.len() {
        let (bytes, index) = run.next_fit()?;
        run.send_intact(&bytes, index)?;
    }
    run.wire
        .push(&[0x55, 0x55, 0], Tag::Fault(Fault::Garbage))?;
    run.wire.flush(&mut run.device)?;
    run.settle()?;
    run.faults.counts = [Count::default(); Fault::ALL.len()];
    let before = run.device.info().map_err(|e| e.to_string())?.stack;
    run.stack_budget = before.used;

    run.byte_faults()?;
    run.leaving()?;
    run.flood()?;

    let after = run.device.info().map_err(|e| e.to_string())?.stack;
    let wire = &run.wire;
    let requests = Requests {
        intact: wire.intact,
        answered: run.answered,
        swallowed: wire.swallowed,
        abandoned: wire.abandoned,
        damaged_replies: run.damaged_replies,
    };
    let counts = run.faults.counts;
    let closing = run.device.close().map_err(|e| e.to_string())?;
    if !closing.exit.is_some_and(|s| s.success()) {
        return Err(format!("QEMU ended with {:?}", closing.exit));
    }

    if requests.answered + requests.swallowed + requests.abandoned != requests.intact {
        return Err(format!("requests unaccounted for: {requests:?}"));
    }
    let grown = after.used.max(closing.stack.used);
    if grown > before.used {
        return Err(format!(
            "stack high-water mark grew from {} to {grown} bytes",
            before.used
        ));
    }

    let errors = summary(&counts, &requests);
    println!(
        "  flood: {FLOOD} fits back to back, all answered in order; the firmware fitted {} \
         spectra in all",
        closing.fits
    );
    println!(
        "  stack high-water mark: {} bytes after the clean warm-up (the budget), {} after the \
         faults, of {}",
        before.used, grown, before.size
    );
    println!(
        "link faults: {errors} error replies as predicted, {} requests answered exactly, no \
         hang, no reset, in {:.1} s",
        requests.answered,
        started.elapsed().as_secs_f64()
    );
    Ok(requests.answered + errors)
}

/// What became of the requests that left the host whole.
#[derive(Debug)]
struct Requests {
    intact: u64,
    answered: u64,
    swallowed: u64,
    abandoned: u64,
    damaged_replies: u64,
}

/// Prints the table of faults; returns the number of error replies.
fn summary(counts: &[Count], requests: &Requests) -> u64 {
    println!(
        "\n  {:<36} {:>6} {:>6} {:>7} {:>8} {:>6}",
        "fault (bytes: touched, cut off or sent)", "events", "bytes", "errors", "no reply", "stale"
    );
    let mut errors = 0;
    for fault in Fault::ALL {
        let c = counts[fault.index()];
        errors += c.errors;
        println!(
            "  {:<36} {:>6} {:>6} {:>7} {:>8} {:>6}",
            fault.label(),
            c.events,
            c.bytes,
            c.errors,
            c.silent,
            c.stale
        );
    }
    println!(
        "\n  requests sent whole: {}; answered exactly, in order: {}; swallowed by a fault just \
         before them: {}; abandoned by the host leaving: {} (damaged stale reply frames: {})",
        requests.intact,
        requests.answered,
        requests.swallowed,
        requests.abandoned,
        requests.damaged_replies
    );
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wire with one fit request sent: its frame and its index.
    fn wire_with_fit(seq: u32) -> (Wire, Vec<u8>, usize) {
        let mut wire = Wire::new(600);
        let samples: Vec<u8> = (0..64u16).flat_map(|v| (v * 3 + 1).to_le_bytes()).collect();
        let settings = settings(MethodName::Nnls, None);
        let bytes = frame(&unmix_host::stream::fit_request(seq, &settings, &samples));
        wire.sent.push(Sent::Fit {
            seq,
            settings,
            values: Vec::new(),
        });
        (wire, bytes, 0)
    }

    fn refusals(wire: &Wire) -> Vec<ErrorKind> {
        wire.owed
            .iter()
            .filter_map(|p| match p.owed {
                Owed::Refusal { reply, .. } => Some(reply.kind),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn an_intact_frame_is_owed_its_answer_and_counts_a_fit() {
        let (mut wire, bytes, index) = wire_with_fit(9);
        wire.push(&bytes, Tag::Intact(index)).unwrap();

        assert_eq!(wire.owed.len(), 1);
        assert!(matches!(
            wire.owed[0].owed,
            Owed::Answer { index: 0, fits: 1 }
        ));
        assert_eq!(wire.fits, 1);
    }

    #[test]
    fn a_byte_flipped_to_zero_splits_a_frame_into_two_refusals() {
        let (mut wire, mut bytes, _) = wire_with_fit(1);
        let middle = bytes.len() / 2;
        bytes[middle] = 0;
        wire.push(&bytes, Tag::Fault(Fault::Flip)).unwrap();

        assert_eq!(wire.owed.len(), 2);
        assert_eq!(refusals(&wire).len(), 2);
        assert_eq!(wire.fits, 0);
    }

    #[test]
    fn a_frame_cut_short_without_a_delimiter_takes_the_next_one_down() {
        let (mut wire, bytes, index) = wire_with_fit(2);
        wire.push(&bytes[..10], Tag::Fault(Fault::CutMerged))
            .unwrap();
        wire.push(&bytes, Tag::Intact(index)).unwrap();

        assert_eq!(refusals(&wire).len(), 1);
        assert_eq!(wire.owed.len(), 1);
        assert_eq!(wire.swallowed, 1);
    }

    #[test]
    fn noise_longer_than_the_limit_is_refused_as_too_long() {
        let mut wire = Wire::new(600);
        let mut noise = vec![0x41u8; 700];
        noise.push(0);
        wire.push(&noise, Tag::Fault(Fault::Overlong)).unwrap();

        assert_eq!(refusals(&wire), [ErrorKind::FrameTooLong { limit: 600 }]);
    }

    #[test]
    fn damaged_frames_are_never_owed_a_result_for_any_seed() {
        for seed in 0..300 {
            let (mut wire, bytes, _) = wire_with_fit(seed as u32);
            let mut faults = Injector {
                rng: synthetic::Lcg(seed),
                counts: [Count::default(); Fault::ALL.len()],
            };
            for fault in [Fault::Drop, Fault::Flip, Fault::Duplicate] {
                let damaged = faults.damage_bytes(&bytes, fault);
                assert_ne!(damaged, bytes, "seed {seed}: {fault:?} changed nothing");
                wire.push(&damaged, Tag::Fault(fault)).unwrap();
            }

            assert!(wire.owed.len() >= 3, "seed {seed}");
            assert!(
                wire.owed
                    .iter()
                    .all(|p| matches!(p.owed, Owed::Refusal { reply, .. } if reply.seq.is_none())),
                "seed {seed}"
            );
        }
    }

    #[test]
    fn leaving_makes_owed_replies_optional_and_the_partial_frame_an_optional_error() {
        let (mut wire, bytes, index) = wire_with_fit(5);
        wire.push(&bytes, Tag::Intact(index)).unwrap();
        wire.push(&bytes[..20], Tag::Fault(Fault::LeftMidFrame))
            .unwrap();
        wire.abandon(Fault::LeftMidFrame);

        assert_eq!(wire.abandoned, 1);
        assert_eq!(wire.owed.len(), 2);
        assert!(
            wire.owed
                .iter()
                .all(|p| p.left == Some(Fault::LeftMidFrame))
        );
        assert!(matches!(wire.owed[1].owed, Owed::AnyFrameError { .. }));

        wire.push(&[0], Tag::Fault(Fault::LeftMidFrame)).unwrap();
        assert_eq!(
            wire.owed.len(),
            2,
            "a lone delimiter is answered by nothing"
        );
    }
}
