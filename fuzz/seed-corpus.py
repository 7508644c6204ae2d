#!/usr/bin/env python3
"""Builds seed corpora for the fuzz targets from shared/testdata/xca.

corpus/ is git-ignored. Run from anywhere: python3 fuzz/seed-corpus.py
"""
import os, struct

here = os.path.dirname(os.path.abspath(__file__))
xca = os.path.join(here, "..", "..", "shared", "testdata", "xca")
dirs = {t: os.path.join(here, "corpus", t) for t in ("xpress_decode", "frsx_reader", "unmarshal")}
for d in dirs.values():
    os.makedirs(d, exist_ok=True)

def put(target, name, data):
    with open(os.path.join(dirs[target], name), "wb") as f:
        f.write(data)

def block(raw, comp):
    """One XBLO block: compressed when smaller (MS-FRS2 2.2.1.4.15)."""
    if comp is not None and len(comp) < len(raw):
        return b"XBLO" + struct.pack("<II", len(comp), len(raw)) + comp
    return b"XBLO" + struct.pack("<II", len(raw), len(raw)) + raw

def marshaled(data, ads=b"", sd=None):
    meta = struct.pack("<II4qII H6x QQ", 3, 0, 1, 2, 3, 4, 0x20, 0, 0x8004, len(data), 0)
    out = struct.pack("<III", 1, len(meta), 1) + meta
    if sd:
        out += struct.pack("<III", 6, len(sd), 1) + sd
    out += struct.pack("<III", 4, 0, 0)
    out += struct.pack("<IIQI", 1, 0, len(data), 0) + data
    if ads:
        name = ":x:$DATA".encode("utf-16-le")
        out += struct.pack("<IIQI", 4, 0, len(ads), len(name)) + name + ads
    out += struct.pack("<IIQI", 9, 0, 8 + 3, 0) + struct.pack("<Q", 4096) + b"abc"
    return out

# O:BAG:SYD:(A;;FA;;;SY) in self-relative form.
sid = lambda auth, *subs: struct.pack("<BB", 1, len(subs)) + auth.to_bytes(6, "big") + b"".join(struct.pack("<I", s) for s in subs)
ace = struct.pack("<BBHI", 0, 0, 8 + 12, 0x1F01FF) + sid(5, 18)
acl = struct.pack("<BBHHH", 2, 0, 8 + len(ace), 1, 0) + ace
owner, group = sid(5, 32, 544), sid(5, 18)
sd = struct.pack("<BBHIIII", 1, 0, 0x8004, 20 + len(acl), 20 + len(acl) + len(owner), 0, 20) + acl + owner + group

for f in sorted(os.listdir(os.path.join(xca, "compressed-huffman"))):
    name = f[: -len(".lzhuff")]
    comp = open(os.path.join(xca, "compressed-huffman", f), "rb").read()
    raw = open(os.path.join(xca, "decompressed", name + ".decomp"), "rb").read()
    if len(raw) < 65536:
        put("xpress_decode", name, struct.pack("<H", len(raw)) + comp)
    else:
        put("xpress_decode", name, comp)
    if len(raw) <= 8192:
        # Windows-made compressed blocks inside FRSX framing.
        put("frsx_reader", name, b"FRSX" + block(raw, comp))
    put("frsx_reader", name + "-raw", b"FRSX" + block(raw[:8192], None) + block(raw[8192:8292] or b"x", None))
    if len(raw) <= 20000:
        put("unmarshal", name, marshaled(raw, ads=raw[:50], sd=sd))
put("unmarshal", "empty-flat", marshaled(b""))
put("frsx_reader", "empty", b"FRSX")
print("seeded", {t: len(os.listdir(d)) for t, d in dirs.items()})
