#!/usr/bin/env python3
"""Writes the seed corpus of elf_check_fuzz (tests/fuzz/corpus/elf_check), once, by hand.

Builds a few tiny function libraries with the system C compiler (no libc startup files, stripped,
no separate code pages: 1-3 KB each) and derives broken copies from them: truncated, 32-bit,
big-endian, another machine, ET_EXEC, no section headers (so the reader sizes the symbol table
through DT_HASH or DT_GNU_HASH), extended section numbering. The output is committed; rerun only
to change the seeds (another toolchain gives different but equivalent bytes).

  tests/fuzz/make_elf_seeds.py tests/fuzz/corpus/elf_check
"""
import os
import struct
import subprocess
import sys
import tempfile

ABI = '__attribute__((visibility("default"))) const unsigned faas_abi_version = {};\n'
HANDLE = "int faas_handle(const void* req, void* res) { (void)req; (void)res; return 0; }\n"
INIT = "int faas_init(void) { return 0; }\n"
NEEDS_LIBC = ('#include <string.h>\n'
              'int faas_handle(const char* req, void* res) { (void)res; return (int)strlen(req); }\n')
SMALL = ["-Os", "-s", "-Wl,--build-id=none", "-Wl,-z,noseparate-code", "-Wl,-z,norelro"]


def build(tmp, name, source, flags):
    src = os.path.join(tmp, name + ".c")
    out = os.path.join(tmp, name)
    with open(src, "w") as f:
        f.write(source)
    subprocess.run(["cc", src, "-o", out] + flags + SMALL, check=True)
    with open(out, "rb") as f:
        return f.read()


def patch(data, offset, fmt, *values):
    b = bytearray(data)
    struct.pack_into(fmt, b, offset, *values)
    return bytes(b)


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        lib = ["-shared", "-fPIC", "-nostdlib"]
        gnu = build(tmp, "gnu", ABI.format(1) + HANDLE + INIT, lib + ["-Wl,--hash-style=gnu"])
        sysv = build(tmp, "sysv", ABI.format(1) + HANDLE, lib + ["-Wl,--hash-style=sysv"])
        needs = build(tmp, "needs", ABI.format(1) + NEEDS_LIBC,
                      ["-shared", "-fPIC", "-nostartfiles"])
        abi2 = build(tmp, "abi2", ABI.format(2) + HANDLE, lib)
        pie = build(tmp, "pie", ABI.format(1) + HANDLE,
                    ["-fPIE", "-pie", "-nostdlib", "-Wl,-e,faas_handle"])
    # Elf64_Ehdr: e_ident[16], e_type H @16, e_machine H @18, e_shoff Q @40, e_shnum H @60,
    # e_shstrndx H @62.
    no_shdrs = lambda b: patch(b, 40, "<Q", 0)[:60] + struct.pack("<HH", 0, 0) + b[64:]
    seeds = {
        "01_valid_gnu_hash": gnu,
        "02_valid_sysv_hash": sysv,
        "03_needs_libc": needs,
        "04_no_shdrs_gnu_hash": no_shdrs(gnu),
        "05_no_shdrs_sysv_hash": no_shdrs(sysv),
        "06_abi_2": abi2,
        "07_pie": pie,
        "08_truncated_ehdr": gnu[:40],
        "09_truncated_phdrs": gnu[:100],
        "10_elfclass32": patch(gnu, 4, "B", 1),
        "11_big_endian": patch(gnu, 5, "B", 2),
        "12_aarch64": patch(gnu, 18, "<H", 183),
        "13_et_exec": patch(gnu, 16, "<H", 2),
        "14_shnum_extended": patch(gnu, 60, "<H", 0),
        "15_not_elf": b"#!/bin/sh\necho not a library\n",
    }
    for name, data in seeds.items():
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
