#!/usr/bin/env python3
"""Writes the small seed corpus under fuzz/corpus/<target>/ (run from anywhere).

Seeds give each target a start at the inputs it is about: short byte strings that pick
shapes and modes, well-formed host files, a frame-like byte stream. The fuzzer grows
its own corpus from these; only the seeds are checked in.
"""

import base64
import pathlib
import struct

ROOT = pathlib.Path(__file__).resolve().parent / "corpus"


def write(target, name, data):
    folder = ROOT / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


def npy(shape, descr, payload, fortran=False):
    header = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (
        descr, "True" if fortran else "False", shape)
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + payload


# kernel_fit and svd: bytes choose the shape, modes and seeds of the generated values.
for i, seed in enumerate([b"\x10\x00\x00\x00\x03\x00\x00\x00\x05\x00\x00\x00\x01",
                          b"\x40\x00\x00\x00\x08\x00\x00\x00\x02\x00\x00\x00\x07\x03",
                          b"\x05\x00\x00\x00\x0f\x00\x00\x00\x04\x00\x00\x00" + bytes(range(64))]):
    write("kernel_fit", f"seed{i}", seed)
for i, seed in enumerate([b"\x01\x04\x00\x00\x00\x03\x00\x00\x00\x01",
                          b"\x00\x0b\x00\x00\x00\x0b\x00\x00\x00\x05\x02",
                          b"\x01\x00\x00\x00\x00\x07\x00\x00\x00" + bytes(range(48))]):
    write("svd", f"seed{i}", seed)

# prepared_bytes: the built mode, and a raw header with the magic.
write("prepared_bytes", "built", b"\x01\x0f\x00\x00\x00\x03\x00\x00\x00\x01\x00\x00\x00")
write("prepared_bytes", "raw", b"\x00UNMIXLIB\x01\x00\x00\x00\x04\x00\x00\x00\x01\x00\x00\x00"
      + b"\x00" * 24)

# protocol_decode: buffer size and request, then a stream with a delimiter in it.
write("protocol_decode", "stream", b"\x00\x01\x00\x00\x08" + b"\x01" * 8 + b"\x02"
      + b"\x03\x05\x01\x02\x04\x00\x01\x01\x00garbage\x00")
write("protocol_decode", "empty", b"\x40\x00\x00\x00\x00\x01")

# host_readers: the selector byte picks the extension (0 csv, 1 npy, 2 xy, 3 msa).
write("host_readers", "library.csv", b"\x00two_theta,alpha,beta\n10,1,0.5\n10.5,2,0.25\n11,0,1\n")
write("host_readers", "rows.npy", b"\x01" + npy("(2, 3)", "<f4", struct.pack("<6f", *range(6))))
write("host_readers", "fortran.npy",
      b"\x01" + npy("(2, 2)", "<i2", struct.pack("<4h", 1, 2, 3, 4), fortran=True))
write("host_readers", "huge.npy", b"\x01" + npy("(1, 1000000000000)", "<f4", bytes(16)))
write("host_readers", "header_len_v2.npy",
      b"\x01\x93NUMPY\x02\x00\x80\xff\x84\xd8" + npy("(1, 2)", "<f4", bytes(8))[10:])
# The fuzzer's input that kept npyz's header parser busy for over 10 s (selector included).
write("host_readers", "backtrack.npy", base64.b64decode(
    "AZNOVU1QWQEAdgB7JzFldWNyJzogJzxmNicsW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbWyNbW1tbW1tbW1tbW1tb"
    "W1tbW1tbW9dlJzpbKHsqMXsnbgAAACAgICAgICAgICAgI0ZiYmJiYmJUUyBbW1tbW1tbI1tbW1tbW1tbW1tbW1tb"
    "W1tbW1tbW1tbW1tbW1tbW1tbWyNbW1tbW1tbW1tbW1tbW1tbW1tbW9dlJzpbKHsqMSyQMiks"))
write("host_readers", "strides.npy",
      b"\x01" + npy("(0, 11000000000000, 11000000000)", "<f8", bytes(16)))
write("host_readers", "pattern.xy", b"\x02# two_theta counts\n10 5\n10.5 7\n11 3\n")
write("host_readers", "edges.msa", b"\x03#FORMAT : EMSA/MAS Spectral Data File\n#TITLE : s1\n"
      b"#NPOINTS : 3\n#DATATYPE : Y\n#XPERCHAN : 0.5\n#OFFSET : 100\n#SPECTRUM :\n"
      b"1, 2, 3\n#ENDOFDATA :\n")
