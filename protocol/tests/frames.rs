//! Round trips of every message through frames, and the decoder's behaviour on damaged input.

use proptest::prelude::*;
use unmix_protocol::{
    ErrorKind, ErrorReply, FitOptions, FitRequest, FitResult, FitStatus, FrameDecoder, FrameError,
    MAX_COLUMNS, Method, Reply, Request, SampleFormat, encode,
    io::{parse_reply, parse_request},
    max_frame_len,
};

/// Feeds `bytes` and collects every outcome, messages copied out.
fn feed_all(decoder: &mut FrameDecoder<'_>, bytes: &[u8]) -> Vec<Result<Vec<u8>, FrameError>> {
    bytes
        .iter()
        .filter_map(|&b| decoder.push(b).map(|r| r.map(<[u8]>::to_vec)))
        .collect()
}

/// One complete frame for `message`.
fn frame_of<T: serde::Serialize>(message: &T) -> Vec<u8> {
    let mut out = vec![0u8; 20_000];
    let len = encode(message, &mut out).expect("20 kB holds every test message");
    out.truncate(len);
    out
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::Lstsq),
        Just(Method::Ridge),
        Just(Method::Nnls),
        Just(Method::Fcls)
    ]
}

fn format() -> impl Strategy<Value = SampleFormat> {
    prop_oneof![
        Just(SampleFormat::F32),
        Just(SampleFormat::U16),
        Just(SampleFormat::U32)
    ]
}

fn floats(max: usize) -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(any::<u32>().prop_map(f32::from_bits), 0..=max)
}

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

proptest! {
    #[test]
    fn fit_request_survives_a_frame(
        seq in any::<u32>(),
        method in method(),
        lambda in any::<u32>().prop_map(f32::from_bits),
        chi_square in any::<bool>(),
        format in format(),
        samples in prop::collection::vec(any::<u8>(), 0..3000),
    ) {
        let request = Request::Fit(FitRequest {
            seq,
            method,
            lambda,
            options: FitOptions { chi_square },
            format,
            samples: &samples,
        });
        let frame = frame_of(&request);
        prop_assert!(frame.len() <= max_frame_len(samples.len() + 32));
        prop_assert_eq!(frame.iter().filter(|&&b| b == 0).count(), 1);

        let mut buf = vec![0u8; frame.len()];
        let mut decoder = FrameDecoder::new(&mut buf);
        let outcomes = feed_all(&mut decoder, &frame);
        prop_assert_eq!(outcomes.len(), 1);
        let message = outcomes[0].clone().expect("an intact frame decodes");

        let Ok(Request::Fit(back)) = parse_request(&message) else {
            panic!("not a fit request");
        };
        prop_assert_eq!(back.seq, seq);
        prop_assert_eq!(back.method, method);
        prop_assert_eq!(back.lambda.to_bits(), lambda.to_bits());
        prop_assert_eq!(back.options.chi_square, chi_square);
        prop_assert_eq!(back.format, format);
        prop_assert_eq!(back.samples, &samples[..]);
    }

    #[test]
    fn fit_result_keeps_every_bit(
        seq in any::<u32>(),
        coefficients in floats(MAX_COLUMNS),
        fractions in floats(MAX_COLUMNS),
        std_errors in floats(MAX_COLUMNS),
        residual in any::<u32>(),
        chi2 in prop::option::of(any::<u32>()),
        iterations in any::<u32>(),
        active in any::<u32>(),
        cost in any::<u32>(),
    ) {
        let result = FitResult {
            seq,
            status: FitStatus::IterationCap,
            iterations,
            active,
            residual_norm: f32::from_bits(residual),
            chi2: chi2.map(f32::from_bits),
            reduced_chi2: chi2.map(|b| f32::from_bits(b ^ 1)),
            coefficients: coefficients.as_slice().try_into().expect("within capacity"),
            fractions: fractions.as_slice().try_into().expect("within capacity"),
            std_errors: std_errors.as_slice().try_into().expect("within capacity"),
            cost,
        };
        let frame = frame_of(&Reply::Fit(result));

        let mut buf = [0u8; 512];
        let mut decoder = FrameDecoder::new(&mut buf);
        let outcomes = feed_all(&mut decoder, &frame);
        let message = outcomes[0].clone().expect("an intact frame decodes");
        let Some(Reply::Fit(back)) = parse_reply(&message) else {
            panic!("not a fit result");
        };

        prop_assert_eq!(back.seq, seq);
        prop_assert_eq!(bits(&back.coefficients), bits(&coefficients));
        prop_assert_eq!(bits(&back.fractions), bits(&fractions));
        prop_assert_eq!(bits(&back.std_errors), bits(&std_errors));
        prop_assert_eq!(back.residual_norm.to_bits(), residual);
        prop_assert_eq!(back.chi2.map(f32::to_bits), chi2);
        prop_assert_eq!(back.reduced_chi2.map(f32::to_bits), chi2.map(|b| b ^ 1));
        prop_assert_eq!((back.iterations, back.active, back.cost), (iterations, active, cost));
    }

    #[test]
    fn garbage_then_delimiter_costs_nothing_after_it(
        garbage in prop::collection::vec(any::<u8>(), 0..600),
        seq in any::<u32>(),
    ) {
        let request = Request::Fit(FitRequest {
            seq,
            method: Method::Nnls,
            lambda: 0.0,
            options: FitOptions::default(),
            format: SampleFormat::U16,
            samples: &[1, 2, 3, 4],
        });
        let mut stream = garbage.clone();
        stream.push(0);
        stream.extend(frame_of(&request));

        let mut buf = [0u8; 256];
        let mut decoder = FrameDecoder::new(&mut buf);
        let outcomes = feed_all(&mut decoder, &stream);

        let last = outcomes.last().expect("the valid frame gives an outcome").clone();
        let message = last.expect("the frame after the delimiter decodes");
        prop_assert_eq!(parse_request(&message).ok(), Some(request));
        prop_assert!(outcomes[..outcomes.len() - 1].iter().all(Result::is_err)
            || garbage.contains(&0));
    }

    #[test]
    fn a_changed_byte_is_caught(
        samples in prop::collection::vec(any::<u8>(), 1..400),
        position in any::<prop::sample::Index>(),
        replacement in 1u8..=255,
    ) {
        let request = Request::LoadChunk { offset: 7, bytes: &samples };
        let mut frame = frame_of(&request);
        let at = position.index(frame.len() - 1);
        prop_assume!(frame[at] != replacement);
        frame[at] = replacement;

        let mut buf = [0u8; 1024];
        let mut decoder = FrameDecoder::new(&mut buf);
        let outcomes = feed_all(&mut decoder, &frame);
        prop_assert_eq!(outcomes.len(), 1);
        prop_assert!(outcomes[0].is_err(), "corruption at {} accepted", at);
    }

    #[test]
    fn a_truncated_frame_is_caught_and_the_next_one_decodes(
        samples in prop::collection::vec(any::<u8>(), 1..400),
        cut in any::<prop::sample::Index>(),
    ) {
        let request = Request::LoadChunk { offset: 0, bytes: &samples };
        let frame = frame_of(&request);
        let keep = cut.index(frame.len() - 1).max(1);
        let mut stream = frame[..keep].to_vec();
        stream.push(0);
        stream.extend(&frame);

        let mut buf = [0u8; 1024];
        let mut decoder = FrameDecoder::new(&mut buf);
        let outcomes = feed_all(&mut decoder, &stream);
        prop_assert_eq!(outcomes.len(), 2);
        prop_assert!(outcomes[0].is_err());
        let message = outcomes[1].clone().expect("the intact frame decodes");
        prop_assert_eq!(parse_request(&message).ok(), Some(request));
    }

    #[test]
    fn oversized_frames_never_overrun_and_are_reported(
        capacity in 1usize..64,
        extra in 1usize..300,
        fill in 1u8..=255,
    ) {
        let mut storage = vec![0xA5u8; capacity + 16];
        let (buf, guard) = storage.split_at_mut(capacity);
        let mut decoder = FrameDecoder::new(buf);

        let mut stream = vec![fill; capacity + extra];
        stream.push(0);
        let outcomes = feed_all(&mut decoder, &stream);
        prop_assert_eq!(outcomes, vec![Err(FrameError::TooLong { limit: capacity + 1 })]);
        prop_assert!(guard.iter().all(|&b| b == 0xA5));
    }
}

#[test]
fn a_frame_exactly_at_the_limit_decodes() {
    let frame = frame_of(&Request::Info);
    let mut buf = vec![0u8; frame.len() - 1];
    let mut decoder = FrameDecoder::new(&mut buf);
    assert_eq!(decoder.limit(), frame.len());

    let outcomes = feed_all(&mut decoder, &frame);
    assert_eq!(outcomes.len(), 1);
    assert_eq!(
        parse_request(outcomes[0].as_ref().unwrap()),
        Ok(Request::Info)
    );
}

#[test]
fn empty_frames_are_skipped_silently() {
    let mut buf = [0u8; 64];
    let mut decoder = FrameDecoder::new(&mut buf);
    let mut stream = vec![0, 0, 0];
    stream.extend(frame_of(&Request::Shutdown));

    let outcomes = feed_all(&mut decoder, &stream);
    assert_eq!(outcomes.len(), 1);
    assert_eq!(
        parse_request(outcomes[0].as_ref().unwrap()),
        Ok(Request::Shutdown)
    );
}

#[test]
fn an_unknown_tag_is_named_and_a_bad_body_is_malformed() {
    assert_eq!(
        parse_request(&[0x2A]),
        Err(ErrorReply {
            seq: None,
            kind: ErrorKind::UnknownMessage { tag: 42 }
        })
    );

    // A fit tag and sequence number 300 (varint AC 02), then the body stops.
    assert_eq!(
        parse_request(&[5, 0xAC, 0x02]),
        Err(ErrorReply {
            seq: Some(300),
            kind: ErrorKind::Malformed
        })
    );

    // A complete request with a byte left over is refused too.
    assert_eq!(
        parse_request(&[0, 0]),
        Err(ErrorReply {
            seq: None,
            kind: ErrorKind::Malformed
        })
    );
}

#[test]
fn request_tags_match_the_constants_parsing_relies_on() {
    let fit = Request::Fit(FitRequest {
        seq: 1,
        method: Method::Lstsq,
        lambda: 0.0,
        options: FitOptions::default(),
        format: SampleFormat::F32,
        samples: &[],
    });
    let mut out = [0u8; 64];

    let len = postcard::to_slice(&fit, &mut out).unwrap().len();
    assert!(len > 1);
    assert_eq!(out[0], 5, "Request::Fit must stay tag 5");

    postcard::to_slice(&Request::Shutdown, &mut out).unwrap();
    assert_eq!(u32::from(out[0]) + 1, Request::KINDS);
}

#[test]
fn a_small_output_buffer_is_an_error_not_a_panic() {
    let mut out = [0u8; 3];
    let request = Request::LoadBegin {
        total_len: 1 << 20,
        crc32: 0xDEAD_BEEF,
    };
    assert!(encode(&request, &mut out).is_err());

    let exact = frame_of(&request).len();
    let mut just = vec![0u8; exact];
    assert_eq!(encode(&request, &mut just), Ok(exact));
    let mut short = vec![0u8; exact - 1];
    assert!(encode(&request, &mut short).is_err());
}
