//! Moving frames over `embedded-io` byte streams, and reading messages out of them.
//!
//! The device side reads requests with [`read_frame`] and [`parse_request`] and answers with
//! [`write_frame`]; the host side holds a [`Client`], which sends one request and waits for
//! its reply. Both are blocking: one request in flight at a time, which is also what a polled
//! UART without a receive FIFO needs, since bytes arriving while the device fits a spectrum
//! would otherwise be lost.

use embedded_io::{Read, Write};
use serde::Serialize;

use crate::{EncodeError, ErrorKind, ErrorReply, FrameDecoder, FrameError, Reply, Request};

/// A transport failure or a frame that could not be built.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkError<E> {
    /// The byte stream failed.
    Io(E),
    /// The stream ended (a read returned 0 bytes).
    Closed,
    /// The outgoing message does not fit the transmit buffer.
    Encode(EncodeError),
    /// A reply frame was damaged on the way back.
    Frame(FrameError),
    /// A reply frame that decodes to no [`Reply`].
    Reply,
}

/// Encodes `message` into `scratch` and writes the frame to `stream`.
///
/// # Errors
/// [`LinkError::Encode`] when `scratch` is too small, [`LinkError::Io`] when writing fails.
pub fn write_frame<W: Write, T: Serialize + ?Sized>(
    stream: &mut W,
    message: &T,
    scratch: &mut [u8],
) -> Result<(), LinkError<W::Error>> {
    let len = crate::encode(message, scratch).map_err(LinkError::Encode)?;
    let frame = scratch.get(..len).unwrap_or(&[]);

    stream.write_all(frame).map_err(LinkError::Io)?;
    stream.flush().map_err(LinkError::Io)
}

/// Reads from `stream` until a frame ends and returns its message bytes, or the
/// [`FrameError`] that rejected it (the stream is then in step again).
///
/// Bytes are read one at a time so that nothing after the delimiter is consumed; put a
/// buffered reader underneath when the transport is a socket or a file.
///
/// # Errors
/// [`LinkError::Io`] when reading fails, [`LinkError::Closed`] at the end of the stream.
pub fn read_frame<'d, R: Read>(
    stream: &mut R,
    decoder: &'d mut FrameDecoder<'_>,
) -> Result<Result<&'d [u8], FrameError>, LinkError<R::Error>> {
    let mut byte = [0u8; 1];
    let outcome = loop {
        let n = stream.read(&mut byte).map_err(LinkError::Io)?;
        if n == 0 {
            return Err(LinkError::Closed);
        }
        if let Some(outcome) = decoder.feed(byte[0]) {
            break outcome;
        }
    };
    Ok(outcome.map(|len| decoder.message(len)))
}

/// Reads a request from a frame's message bytes.
///
/// A frame whose leading tag names no request is [`ErrorKind::UnknownMessage`]; a known
/// request that does not decode, or that leaves bytes over, is [`ErrorKind::Malformed`],
/// with the sequence number when it is a fit whose number could still be read.
///
/// # Errors
/// The [`ErrorReply`] to send back.
pub fn parse_request(message: &[u8]) -> Result<Request<'_>, ErrorReply> {
    let malformed = |seq| ErrorReply {
        seq,
        kind: ErrorKind::Malformed,
    };

    let (tag, body) = postcard::take_from_bytes::<u32>(message).map_err(|_| malformed(None))?;
    if tag >= Request::KINDS {
        return Err(ErrorReply {
            seq: None,
            kind: ErrorKind::UnknownMessage { tag },
        });
    }

    match postcard::take_from_bytes::<Request<'_>>(message) {
        Ok((request, [])) => Ok(request),
        _ => {
            let seq = match tag {
                FIT_TAG => postcard::take_from_bytes::<u32>(body)
                    .ok()
                    .map(|(seq, _)| seq),
                _ => None,
            };
            Err(malformed(seq))
        }
    }
}

/// The tag of [`Request::Fit`]: its position in the enum.
const FIT_TAG: u32 = 5;

/// Reads a reply from a frame's message bytes; `None` when they decode to no [`Reply`].
pub fn parse_reply(message: &[u8]) -> Option<Reply> {
    match postcard::take_from_bytes::<Reply>(message) {
        Ok((reply, [])) => Some(reply),
        _ => None,
    }
}

/// The host's end of a session: sends a request, waits for its one reply.
///
/// The buffers are the caller's: `tx` must hold the largest request frame
/// ([`crate::max_frame_len`] of the message size), `rx` the largest reply.
#[derive(Debug)]
pub struct Client<'b, T> {
    stream: T,
    tx: &'b mut [u8],
    decoder: FrameDecoder<'b>,
}

impl<'b, T: Read + Write> Client<'b, T> {
    /// A client over `stream` with transmit buffer `tx` and receive buffer `rx`.
    pub fn new(stream: T, tx: &'b mut [u8], rx: &'b mut [u8]) -> Self {
        Client {
            stream,
            tx,
            decoder: FrameDecoder::new(rx),
        }
    }

    /// The underlying stream, for bytes that are not requests (tests of bad input).
    pub fn stream(&mut self) -> &mut T {
        &mut self.stream
    }

    /// Sends `request` without waiting for the reply, after a `0x00`: that delimiter closes
    /// whatever partial frame line noise left in the device's decoder, so noise between
    /// requests costs no request; the decoder skips the empty frame it makes.
    ///
    /// # Errors
    /// See [`write_frame`].
    pub fn send(&mut self, request: &Request<'_>) -> Result<(), LinkError<T::Error>> {
        self.stream.write_all(&[0]).map_err(LinkError::Io)?;
        write_frame(&mut self.stream, request, self.tx)
    }

    /// Waits for the next reply.
    ///
    /// # Errors
    /// Transport failures, a damaged reply frame ([`LinkError::Frame`]) or one that decodes
    /// to no reply ([`LinkError::Reply`]).
    pub fn receive(&mut self) -> Result<Reply, LinkError<T::Error>> {
        let message = read_frame(&mut self.stream, &mut self.decoder)?.map_err(LinkError::Frame)?;
        parse_reply(message).ok_or(LinkError::Reply)
    }

    /// Sends `request` and waits for its reply.
    ///
    /// # Errors
    /// See [`Client::send`] and [`Client::receive`].
    pub fn call(&mut self, request: &Request<'_>) -> Result<Reply, LinkError<T::Error>> {
        self.send(request)?;
        self.receive()
    }

    /// Gives the stream back.
    pub fn into_inner(self) -> T {
        self.stream
    }
}
