#!/usr/bin/env python3
"""Write a seed corpus for the `idx` fuzz target into corpus/idx/ (not committed).

Each seed is a control byte (see fuzz_targets/idx.rs) followed by a small valid IDX
file, raw or gzip'd, so the fuzzer starts from inputs that get past the header.
Run from fuzz/: python3 make_seeds.py
"""
import gzip
import os
import struct


def idx(magic, dims, payload):
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + bytes(payload)


labels = idx(0x801, [3], [1, 2, 3])
no_labels = idx(0x801, [0], [])
images = idx(0x803, [1, 28, 28], [(7 * i) % 256 for i in range(784)])
small = idx(0x803, [2, 2, 3], range(12))  # two items of 2x3

seeds = {}
for encoding in range(4):
    seeds[f"labels-{encoding}"] = bytes([encoding]) + labels
    seeds[f"images-{encoding}"] = bytes([0b0100 | encoding]) + images
    seeds[f"small-{encoding}"] = bytes([0b1000 | encoding]) + small
seeds["labels-empty"] = bytes([0]) + no_labels
seeds["labels-gzip-as-is"] = bytes([0]) + gzip.compress(labels)
seeds["labels-two-members-as-is"] = bytes([0]) + gzip.compress(labels[:5]) + gzip.compress(labels[5:])
seeds["labels-first-one"] = bytes([0x20]) + labels
seeds["small-first-one-gzip"] = bytes([0x29]) + small
seeds["labels-junk-after-gzip"] = bytes([0]) + gzip.compress(labels) + b"junk"

os.makedirs("corpus/idx", exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join("corpus/idx", name), "wb") as f:
        f.write(data)
print(f"wrote {len(seeds)} seeds to corpus/idx/")
