#!/usr/bin/env python3
"""Write a FULL-SIZE SD3.5 (Medium or Large) checkpoint with random weights, in the official
release layout, for speed and memory comparisons (docs/PERFORMANCE.md):

  OUT/sd3.5_medium.safetensors | sd3.5_large.safetensors   model.diffusion_model.* (MMDiT)
                                                           + first_stage_model.* (VAE)
  OUT/text_encoders/clip_l.safetensors, clip_g.safetensors  (Hugging Face CLIPTextModel-
                                                           WithProjection names; no T5)
  OUT/text_encoder{,_2}/config.json, tokenizer{,_2}/ (links to --tokenizers clip/)

Key names and shapes follow sd3_impls.py / mmditx.py (MMDiT), the LDM VAE and Hugging Face
CLIP, as engine/dev/test_model.c does for the tiny test model, with the real dimensions:
Medium d = 1536, depth 24, MMDiT-X self-attention in blocks 0–12, pos_embed 384²;
Large d = 2432, depth 38, pos_embed 192²; VAE ch 128 × (1, 2, 4, 4); CLIP-L 768 × 12,
CLIP-G 1280 × 32.  Weights ~ N(0, 1/fan_in) (norms 1 ± 0.05), stored as fp16 (or bf16).
The pictures are meaningless: the file exists to time the real shapes.

Needs numpy only (the safetensors file is streamed tensor by tensor, so it never holds the
5–16 GB in memory).  Usage:
  /work/venv/bin/python tools/make-random-sd35.py --variant medium --out /work/models/sd35m \
      --tokenizers /work/shared/tokenizers
"""
import argparse
import json
import os
import struct
import sys

import numpy as np


class Writer:
    """Collects (name, shape) with a generator, then streams a safetensors file."""

    def __init__(self, dtype):
        self.items = []  # (name, shape, init, std)
        self.dtype = dtype

    def put(self, name, shape, std, init="randn"):
        self.items.append((name, tuple(int(s) for s in shape), init, std))

    def linear(self, name, n_out, n_in, bias=True):
        self.put(name + ".weight", (n_out, n_in), 1.0 / np.sqrt(n_in))
        if bias:
            self.put(name + ".bias", (n_out,), 0.02)

    def norm(self, name, d, bias=True):
        self.put(name + ".weight", (d,), 0.05, "norm")
        if bias:
            self.put(name + ".bias", (d,), 0.02)

    def conv(self, name, co, ci, k):
        self.put(name + ".weight", (co, ci, k, k), 1.0 / np.sqrt(ci * k * k))
        self.put(name + ".bias", (co,), 0.02)

    def save(self, path, rng):
        st = {"fp16": "F16", "bf16": "BF16"}[self.dtype]
        header, off = {"__metadata__": {"format": "pt",
                                        "sd35_random": "random weights, not a real model"}}, 0
        for name, shape, _, _ in self.items:
            n = int(np.prod(shape)) * 2
            header[name] = {"dtype": st, "shape": list(shape), "data_offsets": [off, off + n]}
            off += n
        hj = json.dumps(header, separators=(",", ":")).encode()
        hj += b" " * ((8 - len(hj) % 8) % 8)
        tmp = path + ".part"
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(hj)))
            f.write(hj)
            for name, shape, init, std in self.items:
                n = int(np.prod(shape))
                chunk = 1 << 24
                for s in range(0, n, chunk):
                    v = rng.standard_normal(min(chunk, n - s), dtype=np.float32) * np.float32(std)
                    if init == "norm":
                        v += np.float32(1.0)
                    if self.dtype == "fp16":
                        f.write(v.astype("<f2").tobytes())
                    else:  # bf16: round to nearest even from the fp32 bits
                        u = v.view(np.uint32)
                        u = (u + np.uint32(0x7FFF) + ((u >> 16) & np.uint32(1))) >> 16
                        f.write(u.astype("<u2").tobytes())
        os.replace(tmp, path)
        print(f"{path}: {len(self.items)} tensors, {off / 1e9:.2f} GB", flush=True)


def mmdit(w, large):
    D = 2432 if large else 1536
    depth = 38 if large else 24
    pos_max = 192 if large else 384
    p = "model.diffusion_model."
    w.put(p + "pos_embed", (1, pos_max * pos_max, D), 0.1)
    w.conv(p + "x_embedder.proj", D, 16, 2)
    w.linear(p + "t_embedder.mlp.0", D, 256)
    w.linear(p + "t_embedder.mlp.2", D, D)
    w.linear(p + "y_embedder.mlp.0", D, 2048)
    w.linear(p + "y_embedder.mlp.2", D, D)
    w.linear(p + "context_embedder", D, 4096)

    def attn(name, pre_only):
        w.linear(name + ".qkv", 3 * D, D)
        w.norm(name + ".ln_q", 64, bias=False)
        w.norm(name + ".ln_k", 64, bias=False)
        if not pre_only:
            w.linear(name + ".proj", D, D)

    for i in range(depth):
        b = f"{p}joint_blocks.{i}."
        pre_only = i == depth - 1
        attn2 = (not large) and i <= 12
        w.linear(b + "context_block.adaLN_modulation.1", (2 if pre_only else 6) * D, D)
        attn(b + "context_block.attn", pre_only)
        if not pre_only:
            w.linear(b + "context_block.mlp.fc1", 4 * D, D)
            w.linear(b + "context_block.mlp.fc2", D, 4 * D)
        w.linear(b + "x_block.adaLN_modulation.1", (9 if attn2 else 6) * D, D)
        attn(b + "x_block.attn", False)
        if attn2:
            attn(b + "x_block.attn2", False)
        w.linear(b + "x_block.mlp.fc1", 4 * D, D)
        w.linear(b + "x_block.mlp.fc2", D, 4 * D)
    w.linear(p + "final_layer.adaLN_modulation.1", 2 * D, D)
    w.linear(p + "final_layer.linear", 2 * 2 * 16, D)


def vae(w):
    p, ch, mult = "first_stage_model.", 128, (1, 2, 4, 4)

    def res(name, ci, co):
        w.norm(name + ".norm1", ci)
        w.conv(name + ".conv1", co, ci, 3)
        w.norm(name + ".norm2", co)
        w.conv(name + ".conv2", co, co, 3)
        if ci != co:
            w.conv(name + ".nin_shortcut", co, ci, 1)

    def mid(part, C):
        res(f"{p}{part}.mid.block_1", C, C)
        w.norm(f"{p}{part}.mid.attn_1.norm", C)
        for x in ("q", "k", "v", "proj_out"):
            w.conv(f"{p}{part}.mid.attn_1.{x}", C, C, 1)
        res(f"{p}{part}.mid.block_2", C, C)

    w.conv(p + "encoder.conv_in", ch, 3, 3)
    cin = ch
    for i in range(4):
        cout = ch * mult[i]
        for j in range(2):
            res(f"{p}encoder.down.{i}.block.{j}", cin, cout)
            cin = cout
        if i != 3:
            w.conv(f"{p}encoder.down.{i}.downsample.conv", cin, cin, 3)
    mid("encoder", cin)
    w.norm(p + "encoder.norm_out", cin)
    w.conv(p + "encoder.conv_out", 32, cin, 3)
    cin = ch * mult[3]
    w.conv(p + "decoder.conv_in", cin, 16, 3)
    mid("decoder", cin)
    for i in range(3, -1, -1):
        cout = ch * mult[i]
        for j in range(3):
            res(f"{p}decoder.up.{i}.block.{j}", cin, cout)
            cin = cout
        if i != 0:
            w.conv(f"{p}decoder.up.{i}.upsample.conv", cin, cin, 3)
    w.norm(p + "decoder.norm_out", cin)
    w.conv(p + "decoder.conv_out", 3, cin, 3)


def clip(w, W, layers):
    w.put("text_model.embeddings.token_embedding.weight", (49408, W), 0.02)
    w.put("text_model.embeddings.position_embedding.weight", (77, W), 0.01)
    for i in range(layers):
        b = f"text_model.encoder.layers.{i}."
        w.norm(b + "layer_norm1", W)
        for x in ("q_proj", "k_proj", "v_proj", "out_proj"):
            w.linear(b + "self_attn." + x, W, W)
        w.norm(b + "layer_norm2", W)
        w.linear(b + "mlp.fc1", 4 * W, W)
        w.linear(b + "mlp.fc2", W, 4 * W)
    w.norm("text_model.final_layer_norm", W)
    w.linear("text_projection", W, W, bias=False)


CLIP_CONFIG = {"architectures": ["CLIPTextModelWithProjection"], "model_type": "clip_text_model",
               "layer_norm_eps": 1e-05, "max_position_embeddings": 77, "vocab_size": 49408}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variant", choices=("medium", "large"), default="medium")
    ap.add_argument("--out", required=True)
    ap.add_argument("--tokenizers", default="/work/shared/tokenizers",
                    help="folder with clip/vocab.json and clip/merges.txt")
    ap.add_argument("--dtype", choices=("fp16", "bf16"), default="fp16")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    large = a.variant == "large"
    rng = np.random.default_rng(a.seed)
    os.makedirs(os.path.join(a.out, "text_encoders"), exist_ok=True)

    w = Writer(a.dtype)
    mmdit(w, large)
    vae(w)
    w.save(os.path.join(a.out, f"sd3.5_{a.variant}.safetensors"), rng)
    for name, W, layers, heads, act in (("clip_l", 768, 12, 12, "quick_gelu"),
                                        ("clip_g", 1280, 32, 20, "gelu")):
        w = Writer(a.dtype)
        clip(w, W, layers)
        w.save(os.path.join(a.out, "text_encoders", name + ".safetensors"), rng)
        cfg = dict(CLIP_CONFIG, hidden_size=W, intermediate_size=4 * W, num_attention_heads=heads,
                   num_hidden_layers=layers, hidden_act=act, projection_dim=W)
        sub = "text_encoder" if name == "clip_l" else "text_encoder_2"
        os.makedirs(os.path.join(a.out, sub), exist_ok=True)
        with open(os.path.join(a.out, sub, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
    for sub in ("tokenizer", "tokenizer_2"):
        os.makedirs(os.path.join(a.out, sub), exist_ok=True)
        for fn in ("vocab.json", "merges.txt"):
            dst = os.path.join(a.out, sub, fn)
            if os.path.lexists(dst):
                os.unlink(dst)
            os.symlink(os.path.abspath(os.path.join(a.tokenizers, "clip", fn)), dst)
    with open(os.path.join(a.out, "README.txt"), "w") as f:
        f.write("Full-size SD3.5 %s with RANDOM weights (%s), made by tools/make-random-sd35.py "
                "for speed/memory comparisons. Not a real model.\n" % (a.variant, a.dtype))
    return 0


if __name__ == "__main__":
    sys.exit(main())
