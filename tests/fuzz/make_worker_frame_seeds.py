#!/usr/bin/env python3
"""Writes the seed corpus of worker_frame_fuzz (tests/fuzz/corpus/worker_frame), once, by hand.

Each seed is what a worker writes on its channel: 4-byte little-endian length headers and
faas.v1.WorkerResponse payloads (proto/faas/v1/worker.proto), encoded here by hand so the script
needs nothing but Python. The output is committed; rerun only to change the seeds.

  tests/fuzz/make_worker_frame_seeds.py tests/fuzz/corpus/worker_frame
"""
import os
import struct
import sys

MAX_FRAME = (6 << 20) + (256 << 10)  # sandbox::kMaxFrameBytes


def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_varint(num, value):
    return varint(num << 3) + varint(value)


def field_bytes(num, data):
    return varint(num << 3 | 2) + varint(len(data)) + data


def header(name, value):
    return field_bytes(1, name) + field_bytes(2, value)


def result(status, headers=(), body=b"", handler_return=0, too_large=False):
    r = field_varint(1, status)
    for n, v in headers:
        r += field_bytes(2, header(n, v))
    if body:
        r += field_bytes(3, body)
    if handler_return:
        r += field_varint(4, handler_return)
    if too_large:
        r += field_varint(5, 1)
    return field_bytes(2, r)


def ready(ok, error=b"", load_ns=0, init_ns=0):
    r = field_varint(1, 1) if ok else b""
    if error:
        r += field_bytes(2, error)
    if load_ns:
        r += field_varint(3, load_ns)
    if init_ns:
        r += field_varint(4, init_ns)
    return field_bytes(1, r)


def frame(payload):
    return struct.pack("<I", len(payload)) + payload


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    ok = result(200, [(b"content-type", b"text/plain")], b"hello")
    seeds = {
        "01_result_ok": frame(ok),
        "02_ready_ok": frame(ready(True, load_ns=1_234_567, init_ns=89_000)),
        "03_ready_then_result": frame(ready(True)) + frame(ok),
        "04_ready_failed": frame(ready(False, b"faas_init returned 3")),
        "05_result_function_error": frame(result(500, handler_return=-1 & 0xFFFFFFFF)),
        "06_result_too_large": frame(result(200, too_large=True)),
        "07_status_99": frame(result(99)),
        "08_status_600": frame(result(600)),
        "09_status_negative": frame(result(-200)),
        "10_101_headers": frame(result(200, [(b"x-h", b"%d" % i) for i in range(101)])),
        "11_100_headers": frame(result(200, [(b"x-h", b"%d" % i) for i in range(100)])),
        "12_header_crlf": frame(result(200, [(b"x\r\nset-cookie", b"a\r\n\r\nb")])),
        "13_oversized": struct.pack("<I", MAX_FRAME + 1) + ok,
        "14_max_announced_truncated": struct.pack("<I", MAX_FRAME) + ok,
        "15_length_ffffffff": b"\xff\xff\xff\xff" + ok,
        "16_truncated_payload": frame(ok)[:-3],
        "17_truncated_header": b"\x10\x00",
        "18_trailing_bytes": frame(ok) + b"\x00\x00",
        "19_empty_frame": frame(b""),
        "20_bad_wire_type": frame(b"\x17\x00\x00"),
        "21_zygote_forked": frame(field_bytes(3, field_varint(1, 42))),
        "22_zygote_exited": frame(field_bytes(4, field_varint(1, 42) + field_varint(2, 1) +
                                             field_varint(3, 31))),
        "23_unknown_field": frame(ok + field_bytes(15, b"future")),
        "24_ready_and_result": frame(ready(True) + ok),
        "25_raw_result": ok,
        # What tests/e2e/testdata/forge.c writes: WorkerResponse{result{200, body "forged"}}.
        "26_forged": bytes([13, 0, 0, 0, 0x12, 0x0B, 0x08, 0xC8, 0x01, 0x1A, 0x06]) + b"forged",
    }
    for name, data in seeds.items():
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
