#!/usr/bin/env python3
# From ../shared/anchors/torchsharp (the anchor harness), unchanged.
"""Make TorchSharp 0.107.0's libLibTorchSharp.so load on Debian 12 (libstdc++ from GCC 12).

libLibTorchSharp.so was built with GCC >= 13 and so carries a version requirement
GLIBCXX_3.4.32, needed only for `std::ios_base_library_init()`, which GCC 13's <iostream>
references with a bare `.globl` (no relocation uses it: `readelf -r` shows none).  Debian 12's
libstdc++ stops at GLIBCXX_3.4.30, so ld.so refuses the library.  This script marks that
single version requirement VER_FLG_WEAK, which makes ld.so accept the missing version
(glibc dl-version.c: a weak version that is not found is not fatal).

Patches the given file in place (use it on the copy in the build output, never on ~/.nuget).
"""
import struct
import sys

VER_FLG_WEAK = 0x2
TARGETS = {b"GLIBCXX_3.4.32"}


def main(path: str) -> int:
    with open(path, "rb") as f:
        data = bytearray(f.read())
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, "expects ELF64 little-endian"
    e_shoff, = struct.unpack_from("<Q", data, 0x28)
    e_shentsize, e_shnum, e_shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def sh(i):
        name, typ, flags, addr, off, size, link, info, align, entsize = struct.unpack_from(
            "<IIQQQQIIQQ", data, e_shoff + i * e_shentsize)
        return dict(name=name, type=typ, off=off, size=size, link=link, info=info)

    shstr = sh(e_shstrndx)

    def cstr(base, off):
        end = data.index(b"\0", base + off)
        return bytes(data[base + off:end])

    SHT_GNU_verneed = 0x6FFFFFFE
    patched = 0
    for i in range(e_shnum):
        s = sh(i)
        if s["type"] != SHT_GNU_verneed:
            continue
        dynstr = sh(s["link"])
        off = s["off"]
        for _ in range(s["info"]):  # sh_info = number of Verneed entries
            vn_version, vn_cnt, vn_file, vn_aux, vn_next = struct.unpack_from("<HHIII", data, off)
            aoff = off + vn_aux
            for _ in range(vn_cnt):
                vna_hash, vna_flags, vna_other, vna_name, vna_next = struct.unpack_from("<IHHII", data, aoff)
                name = cstr(dynstr["off"], vna_name)
                if name in TARGETS and not (vna_flags & VER_FLG_WEAK):
                    struct.pack_into("<H", data, aoff + 4, vna_flags | VER_FLG_WEAK)
                    patched += 1
                    print(f"fix_glibcxx: {path}: {cstr(dynstr['off'], vn_file).decode()} {name.decode()} -> weak")
                aoff += vna_next
            if vn_next == 0:
                break
            off += vn_next
    if patched:
        with open(path, "wb") as f:
            f.write(data)
    else:
        print(f"fix_glibcxx: {path}: nothing to patch")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
