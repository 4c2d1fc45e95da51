#!/usr/bin/env python3
"""Regenerates the seed corpus of fuzz_safetensors (tiny valid and invalid safetensors files).
Run from tests/fuzz/: python3 make_corpus.py"""
import json
import struct


def st(header, data=b'', pad=True, raw=None):
    h = raw if raw is not None else json.dumps(header, separators=(',', ':')).encode()
    if pad:
        h += b' ' * (-len(h) % 8)
    return struct.pack('<Q', len(h)) + h + data


seeds = {
    'valid_all_dtypes': st({'__metadata__': {'format': 'pt'},
                            'a': {'dtype': 'F32', 'shape': [2], 'data_offsets': [0, 8]},
                            'b': {'dtype': 'I64', 'shape': [1], 'data_offsets': [8, 16]},
                            'c': {'dtype': 'F16', 'shape': [2, 1], 'data_offsets': [16, 20]},
                            'd': {'dtype': 'BF16', 'shape': [1], 'data_offsets': [20, 22]},
                            'e': {'dtype': 'I32', 'shape': [], 'data_offsets': [24, 28]},
                            'f': {'dtype': 'F8_E4M3', 'shape': [1], 'data_offsets': [28, 29]},
                            'g': {'dtype': 'F8_E5M2', 'shape': [1], 'data_offsets': [29, 30]},
                            'h': {'dtype': 'U8', 'shape': [0, 3], 'data_offsets': [30, 30]}},
                           bytes(range(32))),
    'valid_empty': st({}),
    'valid_escapes': st(None, b'\x00\x00\x80\x3f',
                        raw=b'{"na\\u00e9\\ud83d\\ude00\\"\\\\":{"dtype":"F32","shape":[1],'
                            b'"data_offsets":[0,4],"x":[true,null,1.5e3]}}'),
    'bad_overlap': st({'a': {'dtype': 'U8', 'shape': [4], 'data_offsets': [0, 4]},
                       'b': {'dtype': 'U8', 'shape': [4], 'data_offsets': [2, 6]}}, bytes(8)),
    'bad_dtype': st({'a': {'dtype': 'F64', 'shape': [1], 'data_offsets': [0, 8]}}, bytes(8)),
    'bad_truncated': st({'a': {'dtype': 'F32', 'shape': [4], 'data_offsets': [0, 16]}}, bytes(5)),
    'bad_hugelen': struct.pack('<Q', 2**64 - 1) + b'{}',
}
for name, blob in seeds.items():
    with open('corpus/' + name, 'wb') as f:
        f.write(blob)
