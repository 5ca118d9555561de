//! The wire protocol's receiving side: arbitrary bytes through the frame decoder, and the
//! messages it lets through into `parse_request` and `parse_reply`.
//!
//! Holds: no panic; nothing is written past the decoder's buffer (canary bytes after it stay
//! intact); `read_frame` over the same stream consumes every byte and reports the same
//! frames as byte-by-byte `push`; a parsed message re-encodes to a frame that parses to the
//! same encoding; parse errors are the documented kinds; and after any garbage, a `0x00`
//! and a valid frame decode to exactly the request that was sent.

#![no_main]

use libfuzzer_sys::fuzz_target;
use unmix_fuzz::Input;
use unmix_protocol::io::{LinkError, parse_reply, parse_request, read_frame};
use unmix_protocol::{
    ErrorKind, FitOptions, FitRequest, FrameDecoder, FrameError, Method, Request, SampleFormat,
    decode_samples, encode, max_frame_len,
};

const CANARY: u8 = 0xa5;

fuzz_target!(|data: &[u8]| run(&mut Input::new(data)));

fn run(input: &mut Input) {
    let capacity = input.range(1, 600);
    let request_bytes: Vec<u8> = (0..input.range(0, 64)).map(|_| input.byte()).collect();
    let request = request(input, &request_bytes);
    let garbage = input.rest();

    let mut backing = vec![CANARY; capacity + 16];
    let (buf, canary) = backing.split_at_mut(capacity);
    let mut decoder = FrameDecoder::new(buf);
    let mut pushed = Vec::new();
    for &byte in garbage {
        if let Some(outcome) = decoder.push(byte) {
            let outcome = outcome.map(<[u8]>::to_vec);
            if let Ok(message) = &outcome {
                assert!(
                    message.len() + 4 <= capacity,
                    "message longer than the buffer"
                );
                check_message(message);
            }
            pushed.push(outcome);
        }
    }
    assert!(
        canary.iter().all(|&b| b == CANARY),
        "written past the buffer"
    );

    let mut stream = garbage;
    let mut read_buf = vec![0u8; capacity];
    let mut reader = FrameDecoder::new(&mut read_buf);
    let mut read = Vec::new();
    loop {
        match read_frame(&mut stream, &mut reader) {
            Ok(outcome) => read.push(outcome.map(<[u8]>::to_vec)),
            Err(LinkError::Closed) => break,
            Err(other) => panic!("reading from a slice failed: {other:?}"),
        }
    }
    assert!(stream.is_empty(), "read_frame left {} bytes", stream.len());
    assert_eq!(pushed, read, "push and read_frame disagree");

    let mut frame = vec![0u8; max_frame_len(request_bytes.len() + 64)];
    let len = encode(&request, &mut frame).expect("sized by max_frame_len");
    let frame = &frame[..len];
    let mut last = None;
    for (at, &byte) in [0u8].iter().chain(frame).enumerate() {
        let outcome = decoder.push(byte).map(|o| o.map(<[u8]>::to_vec));
        if at == 0 {
            continue;
        }
        assert!(
            outcome.is_none() || at == frame.len(),
            "a frame ended early at {at}"
        );
        last = outcome;
    }
    assert!(
        canary.iter().all(|&b| b == CANARY),
        "written past the buffer"
    );

    match last {
        Some(Ok(message)) => assert_eq!(parse_request(&message), Ok(request)),
        Some(Err(FrameError::TooLong { limit })) => {
            assert!(
                frame.len() > limit,
                "a {}-byte frame is within {limit}",
                frame.len()
            );
        }
        other => panic!("the valid frame after garbage decoded as {other:?}"),
    }
}

/// A request that carries fuzzed bytes: a library chunk or a spectrum to fit.
fn request<'a>(input: &mut Input, bytes: &'a [u8]) -> Request<'a> {
    match input.range(0, 2) {
        0 => Request::LoadChunk {
            offset: input.u32(),
            bytes,
        },
        1 => Request::Info,
        _ => Request::Fit(FitRequest {
            seq: input.u32(),
            method: [Method::Lstsq, Method::Ridge, Method::Nnls, Method::Fcls][input.range(0, 3)],
            lambda: input.unit(),
            options: FitOptions {
                chi_square: input.one_in(2),
            },
            format: [SampleFormat::F32, SampleFormat::U16, SampleFormat::U32][input.range(0, 2)],
            samples: bytes,
        }),
    }
}

/// A message that passed the frame checks: parsing fails only in documented ways, and what
/// parses re-encodes stably.
fn check_message(message: &[u8]) {
    match parse_request(message) {
        Ok(request) => {
            let first = frame_of(&request);
            let again = reparse(&first, |m| parse_request(m).map(|r| frame_of(&r)).ok());
            assert_eq!(
                again.as_ref(),
                Some(&first),
                "request does not re-encode stably"
            );
            if let Request::Fit(fit) = request {
                let mut out = vec![0.0f32; (fit.samples.len() / fit.format.size()).min(4096)];
                match decode_samples(fit.format, fit.samples, &mut out) {
                    Ok(()) => assert!(out.iter().all(|v| v.is_finite())),
                    Err(ErrorKind::WrongLength { .. } | ErrorKind::NonFinite { .. }) => {}
                    Err(other) => panic!("decode_samples: undocumented {other:?}"),
                }
            }
        }
        Err(reply) => match reply.kind {
            ErrorKind::Malformed => {}
            ErrorKind::UnknownMessage { tag } => {
                assert!(tag >= Request::KINDS && reply.seq.is_none());
            }
            other => panic!("parse_request: undocumented {other:?}"),
        },
    }

    if let Some(reply) = parse_reply(message) {
        let first = frame_of(&reply);
        let again = reparse(&first, |m| parse_reply(m).map(|r| frame_of(&r)));
        assert_eq!(
            again.as_ref(),
            Some(&first),
            "reply does not re-encode stably"
        );
    }
}

fn frame_of<T: serde::Serialize>(message: &T) -> Vec<u8> {
    let mut out = vec![0u8; 8192];
    let len = encode(message, &mut out).expect("a parsed message fits 8 KiB");
    out.truncate(len);
    out
}

/// Decodes one whole `frame` and applies `parse` to its message.
fn reparse(frame: &[u8], parse: impl Fn(&[u8]) -> Option<Vec<u8>>) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; frame.len()];
    let mut decoder = FrameDecoder::new(&mut buf);
    let (&end, body) = frame.split_last()?;
    assert_eq!(end, 0);
    assert!(body.iter().all(|&b| decoder.push(b).is_none()));
    let message = decoder.push(0)?.expect("a frame encode wrote decodes");
    parse(message)
}
