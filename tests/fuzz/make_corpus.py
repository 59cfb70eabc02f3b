#!/usr/bin/env python3
"""make_corpus.py — write the small valid seed files of the fuzz corpora
(tests/fuzz/corpus/{safetensors,gguf,json}/). Run from anywhere; needs only
the standard library. Golden config files are copied when present."""
import json, os, shutil, struct, sys

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "../../../shared/golden")


def out(sub, name, data):
    d = os.path.join(HERE, "corpus", sub)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def safetensors(tensors, meta=None):
    """tensors: list of (name, dtype, shape, bytes)."""
    hdr, off, blob = {}, 0, b""
    if meta:
        hdr["__metadata__"] = meta
    for name, dt, shape, data in tensors:
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(data)]}
        off += len(data)
        blob += data
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + blob


def f32(vals):
    return struct.pack(f"<{len(vals)}f", *vals)


st1 = safetensors([("w", "F32", [2, 3], f32([1, -2, 3.5, 0.25, 8, -1])),
                   ("b", "BF16", [4], struct.pack("<4H", 0x3F80, 0xC000, 0x4040, 0x0001))],
                  {"format": "pt"})
st2 = safetensors([("codes", "I64", [2, 2], struct.pack("<4q", 1, 2, -3, 2048)),
                   ("mask", "BOOL", [3], b"\x01\x00\x01"), ("x", "I8", [2], b"\x7f\x80"),
                   ("y", "U8", [1], b"\x05"), ("z", "I32", [1], struct.pack("<i", -7)),
                   ("h", "F16", [2], struct.pack("<2H", 0x3C00, 0x7C00)), ("e", "F32", [0, 4], b"")])
st3 = safetensors([("scalar", "F32", [], f32([2.5]))])
out("safetensors", "two_tensors_meta.safetensors", st1)
out("safetensors", "all_dtypes.safetensors", st2)
out("safetensors", "scalar.safetensors", st3)


def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf(version, kvs, tensors, align=32):
    """kvs: list of (key, type, payload bytes); tensors: (name, ne, type, data)."""
    h = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    for k, t, payload in kvs:
        h += gstr(k) + struct.pack("<I", t) + payload
    off, blob = 0, b""
    for name, ne, typ, data in tensors:
        h += gstr(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", n) for n in ne)
        h += struct.pack("<IQ", typ, off)
        pad = data + b"\0" * (-len(data) % align)
        off += len(pad)
        blob += pad
    h += b"\0" * (-len(h) % align)
    return h + blob


q8_block = struct.pack("<H", 0x2C00) + bytes(range(0, 64, 2))  # d = 1/16, qs 0..62
q4_block = struct.pack("<H", 0x3800) + bytes(range(16))
kvs = [("general.architecture", 8, gstr("moshi")),
       ("t.u32", 4, struct.pack("<I", 7)),
       ("t.f32", 6, struct.pack("<f", 0.5)),
       ("t.bool", 7, b"\x01"),
       ("t.i64", 11, struct.pack("<q", -5)),
       ("t.f64", 12, struct.pack("<d", 1e-5)),
       ("t.arr", 9, struct.pack("<IQ", 5, 3) + struct.pack("<3i", 1, -2, 3)),
       ("t.strs", 9, struct.pack("<IQ", 8, 2) + gstr("a") + gstr("bc")),
       ("t.nested", 9, struct.pack("<IQ", 9, 1) + struct.pack("<IQ", 0, 2) + b"\x01\x02")]
tens = [("w.q8", [32, 2], 8, q8_block * 2), ("w.f32", [3, 1, 1], 0, f32([1, 2, 3])),
        ("w.q4", [32], 2, q4_block), ("w.f16", [2], 1, struct.pack("<2H", 0x3C00, 0xBC00)),
        ("w.bf16", [2], 30, struct.pack("<2H", 0x3F80, 0x4000))]
out("gguf", "v3_kv_tensors.gguf", gguf(3, kvs, tens))
out("gguf", "v2_candle_like.gguf", gguf(2, [], tens[:2]))
out("gguf", "v3_align64.gguf", gguf(3, [("general.alignment", 4, struct.pack("<I", 64))], tens[:1], 64))

out("json", "header.json", json.dumps({"__metadata__": {"format": "pt"},
                                       "a": {"dtype": "F32", "shape": [2, 4], "data_offsets": [0, 32]},
                                       "b": {"dtype": "I64", "shape": [3], "data_offsets": [32, 56]}}).encode())
for rel in ("lm_tiny/config.json", "kyutai_test_lm/config.json", "mimi_tiny/config.json"):
    p = os.path.join(GOLDEN, rel)
    if os.path.exists(p):
        shutil.copyfile(p, os.path.join(HERE, "corpus", "json", rel.replace("/", "_")))
print("corpus written under", os.path.join(HERE, "corpus"))
