#!/usr/bin/env python3
"""GGUF files for the tests and for measurements (needs the PyPI packages gguf, numpy,
safetensors; CI does not run this: its outputs under tests/data/gguf/ are committed).

  make_gguf.py fixtures OUTDIR
      OUTDIR/dequant.gguf: one [4, 512] tensor per supported GGML type (F32, F16, BF16, Q8_0,
      Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K).  The 32-value types come from gguf-py's own
      quantizers; gguf-py has no quantizer for the K types, so their blocks are random bytes
      with finite, random f16 scales (every bit pattern of the quantized fields is legal).
      OUTDIR/dequant_ref.safetensors: the same names, the values as gguf.quants.dequantize
      (numpy) gives them, fp32 — the reference the C dequantisation must equal bit for bit.
  make_gguf.py corpus OUTDIR
      Small seed files for tests/fuzz/corpus_gguf (each type once, metadata of every value
      type, an orig_shape, alignment 64, an empty file of tensors).
  make_gguf.py convert IN.safetensors OUT.gguf TYPE [--prefix model.diffusion_model.]
      The MMDiT of an SD3.5 single file as ComfyUI-GGUF's converter writes it: the
      "model.diffusion_model." prefix stripped, general.architecture "sd3", vectors and
      tensors of at most 1024 values in F32, every other tensor in TYPE where its rows are
      whole blocks, else Q8_0/F16 fallback (as llama-quantize / the converter fall back).
      --prefix keeps the official names (stable-diffusion.cpp's convert keeps them).
      Streams tensor by tensor (peak memory ≈ one tensor, plus the writer's temp file).
"""
import argparse
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

SEED = 20261206


def f16_bytes(rng, n, lo=-0.05, hi=0.05):
    v = rng.uniform(lo, hi, n).astype(np.float16)
    return v.view(np.uint8).reshape(n, 2)


def random_k_blocks(rng, qtype, n_blocks):
    bsize = gguf.GGML_QUANT_SIZES[qtype][1]
    b = rng.integers(0, 256, (n_blocks, bsize), dtype=np.uint8)
    if qtype in (T.Q4_K, T.Q5_K):          # d, dmin first
        b[:, 0:2] = f16_bytes(rng, n_blocks, 1e-4, 2e-3)
        b[:, 2:4] = f16_bytes(rng, n_blocks, 1e-4, 2e-3)
        b[0, 0:2] = np.array([1], dtype=np.uint16).view(np.uint8)   # a subnormal f16 d
    elif qtype == T.Q6_K:                  # d last
        b[:, 208:210] = f16_bytes(rng, n_blocks, -2e-3, 2e-3)
    return b


def fixtures(outdir):
    from safetensors.numpy import save_file
    rng = np.random.default_rng(SEED)
    rows, cols = 4, 512
    w = gguf.GGUFWriter(f"{outdir}/dequant.gguf", arch="sd3")
    ref = {}
    for qt in (T.F32, T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1,
               T.Q4_K, T.Q5_K, T.Q6_K):
        if qt in (T.Q4_K, T.Q5_K, T.Q6_K):
            nb = rows * cols // 256
            raw = random_k_blocks(rng, qt, nb).reshape(rows, -1)
        else:
            x = rng.standard_normal((rows, cols)).astype(np.float32) * 0.05
            x[0, :32] = 0.0                     # an all-zero block (d = 0)
            x[1, 5] = 3.0                       # an outlier
            raw = gguf.quants.quantize(x, qt)
        w.add_tensor(qt.name, raw, raw_dtype=qt)
        ref[qt.name] = np.ascontiguousarray(gguf.quants.dequantize(raw, qt).astype(np.float32)
                                            .reshape(rows, cols))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    save_file(ref, f"{outdir}/dequant_ref.safetensors")


def corpus(outdir):
    rng = np.random.default_rng(SEED + 1)

    def write(name, tensors, kv=None, alignment=None):
        w = gguf.GGUFWriter(f"{outdir}/{name}", arch="sd3")
        if alignment:
            w.add_custom_alignment(alignment)
        for k, (fn, v) in (kv or {}).items():
            getattr(w, fn)(k, v)
        for tn, raw, qt in tensors:
            w.add_tensor(tn, raw, raw_dtype=qt)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()

    small = []
    for qt in (T.F32, T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1):
        x = rng.standard_normal((2, 32)).astype(np.float32)
        small.append((qt.name.lower(), gguf.quants.quantize(x, qt), qt))
    write("valid_small_types", small)
    write("valid_k_types", [(qt.name.lower(), random_k_blocks(rng, qt, 1), qt)
                            for qt in (T.Q4_K, T.Q5_K, T.Q6_K)])
    write("valid_metadata", [("w", np.ones((1, 8), np.float32), T.F32)],
          kv={"x.u32": ("add_uint32", 7), "x.i64": ("add_int64", -3),
              "x.f64": ("add_float64", 0.5), "x.bool": ("add_bool", True),
              "x.str": ("add_string", "hello"), "x.arr": ("add_array", [1, 2, 3]),
              "x.strs": ("add_array", ["a", "bc"])})
    write("valid_orig_shape", [("conv.weight", np.ones((1, 16), np.float32), T.F32)],
          kv={"comfy.gguf.orig_shape.conv.weight": ("add_array", [4, 2, 2])})
    write("valid_align64", [("a", np.ones((2, 32), np.float16), T.F16),
                            ("b", gguf.quants.quantize(np.ones((1, 32), np.float32), T.Q8_0),
                             T.Q8_0)], alignment=64)
    write("valid_no_tensors", [])


def pick_type(name, shape, want):
    n = int(np.prod(shape))
    if len(shape) == 1 or n <= 1024:
        return T.F32
    cols = shape[-1]
    blk = gguf.GGML_QUANT_SIZES[want][0]
    if want in (T.F32, T.F16, T.BF16):
        return want
    if cols % blk == 0:
        return want
    if cols % 32 == 0:
        return T.Q8_0 if want == T.Q8_0 else T.Q5_0
    return T.F16


def st_tensors(path):
    """(name, fp32 array) of a safetensors file, read through np.memmap (bf16 included)."""
    import json
    import struct
    with open(path, "rb") as fh:
        hl = struct.unpack("<Q", fh.read(8))[0]
        header = json.loads(fh.read(hl))
    mm = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + hl)
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        raw = mm[a:b]
        dt = info["dtype"]
        if dt == "BF16":
            x = (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            x = raw.view({"F32": np.float32, "F16": np.float16}[dt]).astype(np.float32)
        yield name, x.reshape(info["shape"])


def convert(src, dst, type_name, prefix):
    want = T[type_name]
    w = gguf.GGUFWriter(dst, arch="sd3", use_temp_file=True)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    counts = {}
    n = 0
    for k, x in st_tensors(src):
        if not k.startswith("model.diffusion_model."):
            continue
        n += 1
        if True:
            qt = pick_type(k, x.shape, want)
            name = k if prefix else k[len("model.diffusion_model."):]
            if qt in (T.F32, T.F16):
                raw = x.astype(np.float32 if qt == T.F32 else np.float16)
            else:
                raw = gguf.quants.quantize(x.reshape(-1, x.shape[-1]), qt)
                raw = raw.reshape(*x.shape[:-1], raw.shape[-1])
            w.add_tensor(name, raw, raw_dtype=qt)
            counts[qt.name] = counts.get(qt.name, 0) + 1
            del x, raw
    if n == 0:
        sys.exit(f"{src}: no model.diffusion_model.* tensors")
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file(progress=False)
    w.close()
    print(f"{dst}: {n} tensors " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("fixtures")
    a.add_argument("outdir")
    cp = sub.add_parser("corpus")
    cp.add_argument("outdir")
    c = sub.add_parser("convert")
    c.add_argument("src")
    c.add_argument("dst")
    c.add_argument("type")
    c.add_argument("--prefix", action="store_true",
                   help="keep the model.diffusion_model. prefix (stable-diffusion.cpp style)")
    args = ap.parse_args()
    if args.cmd == "fixtures":
        fixtures(args.outdir)
    elif args.cmd == "corpus":
        corpus(args.outdir)
    else:
        convert(args.src, args.dst, args.type, args.prefix)


if __name__ == "__main__":
    main()
