#!/usr/bin/env python3
"""Makes the LoRA test fixtures in tests/data/lora/ for the tiny golden models
(shared/golden/models): one LoRA per key format real SD3/SD3.5 LoRAs use, and, for each
test scenario, the touched weights of an independently merged checkpoint (numpy:
W + strength * alpha/rank * B @ A in fp32, rounded to the file's dtype).

  diffusers.safetensors  PEFT/diffusers keys (transformer.transformer_blocks.N.attn.to_q.lora_A
                         ..., separate q/k/v, add_*_proj, to_out.0, to_add_out, ff, ff_context,
                         norm1.linear, norm1_context.linear of the pre_only block, norm_out,
                         text_encoder/_2/_3), rank 4, no alpha
  kohya.safetensors      sd-scripts keys (lora_unet_joint_blocks_N_..., lora_te1_/te2_/te3_,
                         .alpha), rank 4, alpha 2; one module naming no layer and one stray key
  official.safetensors   official keys (model.diffusion_model.joint_blocks.N....lora_up/down,
                         .alpha), rank 2, fp16 factors
  expected.safetensors   "<scenario>/<part>/<checkpoint key>" = merged weight (file dtype) for
                         scenarios diffusers@1, kohya@0.8, official@-1.5 and pair = kohya@0.8
                         + official@-1.5 (in that order; both touch joint_blocks.0.x_block.
                         attn.qkv: only the tensors both touch are stored for it, the others
                         equal the single scenarios')

The C test (tests/parity/test_lora.c) builds the merged checkpoints from expected.safetensors
and compares generations with the engine's own merge.  Needs numpy only:
  /work/venv/bin/python tests/tools/make_lora_fixtures.py SHARED_DIR OUT_DIR
and, for timing at full size (tests/bench/bench_lora.c), a rank-16 LoRA on every attention
projection of a checkpoint:
  /work/venv/bin/python tests/tools/make_lora_fixtures.py --random-for MODEL.safetensors OUT
"""
import json
import struct
import sys

import numpy as np

DT = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}


def read_st(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    h.pop("__metadata__", None)
    out = {}
    for k, v in h.items():
        s, e = v["data_offsets"]
        a = np.frombuffer(b[8 + n + s:8 + n + e], dtype=DT[v["dtype"]]).reshape(v["shape"])
        out[k] = (v["dtype"], a)
    return out


def write_st(path, tensors):
    """tensors: name -> (dtype name, array)"""
    header, blobs, off = {}, [], 0
    for k in sorted(tensors):
        dt, a = tensors[k]
        raw = np.ascontiguousarray(a).tobytes()
        header[k] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * ((8 - len(hj) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)) + hj + b"".join(blobs))


def to_f32(dt, a):
    if dt == "BF16":
        return (a.astype(np.uint32) << 16).view(np.float32)
    return a.astype(np.float32)


def from_f32(dt, x):
    x = x.astype(np.float32)
    if dt == "BF16":
        u = x.view(np.uint32).astype(np.uint64)
        return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    return x.astype(DT[dt])


rng = np.random.default_rng(1234)


def factors(rows, cols, rank, dtype=np.float32):
    a = (rng.standard_normal((rank, cols)) * 0.3).astype(dtype)
    b = (rng.standard_normal((rows, rank)) * 0.3).astype(dtype)
    return a, b


def main():
    shared, out = sys.argv[1], sys.argv[2]
    models = {
        "mmdit": read_st(shared + "/golden/models/sd3.5_tiny_large.safetensors"),
        "clip_l": read_st(shared + "/golden/models/clip_l.safetensors"),
        "clip_g": read_st(shared + "/golden/models/clip_g.safetensors"),
        "t5": read_st(shared + "/golden/models/t5xxl.safetensors"),
    }
    M = "model.diffusion_model."
    D = 128

    # (lora module key, part, checkpoint key, first row, rows, swap halves, rank)
    diffusers = [
        ("transformer.transformer_blocks.0.attn.to_q", "mmdit", M + "joint_blocks.0.x_block.attn.qkv.weight", 0, D, False),
        ("transformer.transformer_blocks.0.attn.to_k", "mmdit", M + "joint_blocks.0.x_block.attn.qkv.weight", D, D, False),
        ("transformer.transformer_blocks.0.attn.to_v", "mmdit", M + "joint_blocks.0.x_block.attn.qkv.weight", 2 * D, D, False),
        ("transformer.transformer_blocks.1.attn.add_k_proj", "mmdit", M + "joint_blocks.1.context_block.attn.qkv.weight", D, D, False),
        ("transformer.transformer_blocks.0.attn.to_out.0", "mmdit", M + "joint_blocks.0.x_block.attn.proj.weight", 0, D, False),
        ("transformer.transformer_blocks.0.attn.to_add_out", "mmdit", M + "joint_blocks.0.context_block.attn.proj.weight", 0, D, False),
        ("transformer.transformer_blocks.0.ff.net.0.proj", "mmdit", M + "joint_blocks.0.x_block.mlp.fc1.weight", 0, 4 * D, False),
        ("transformer.transformer_blocks.1.norm1.linear", "mmdit", M + "joint_blocks.1.x_block.adaLN_modulation.1.weight", 0, 6 * D, False),
        ("transformer.transformer_blocks.1.norm1_context.linear", "mmdit", M + "joint_blocks.1.context_block.adaLN_modulation.1.weight", 0, 2 * D, True),
        ("transformer.norm_out.linear", "mmdit", M + "final_layer.adaLN_modulation.1.weight", 0, 2 * D, True),
        ("transformer.proj_out", "mmdit", M + "final_layer.linear.weight", 0, 64, False),
        ("transformer.context_embedder", "mmdit", M + "context_embedder.weight", 0, D, False),
        ("transformer.time_text_embed.timestep_embedder.linear_2", "mmdit", M + "t_embedder.mlp.2.weight", 0, D, False),
        ("text_encoder.text_model.encoder.layers.0.self_attn.k_proj", "clip_l", "text_model.encoder.layers.0.self_attn.k_proj.weight", 0, 48, False),
        ("text_encoder_2.text_model.encoder.layers.1.mlp.fc1", "clip_g", "text_model.encoder.layers.1.mlp.fc1.weight", 0, 256, False),
        ("text_encoder_3.encoder.block.0.layer.0.SelfAttention.q", "t5", "encoder.block.0.layer.0.SelfAttention.q.weight", 0, 128, False),
    ]
    kohya = [
        ("lora_unet_joint_blocks_0_x_block_attn_qkv", "mmdit", M + "joint_blocks.0.x_block.attn.qkv.weight", 0, 3 * D, False),
        ("lora_unet_joint_blocks_1_context_block_adaLN_modulation_1", "mmdit", M + "joint_blocks.1.context_block.adaLN_modulation.1.weight", 0, 2 * D, False),
        ("lora_unet_joint_blocks_0_context_block_attn_proj", "mmdit", M + "joint_blocks.0.context_block.attn.proj.weight", 0, D, False),
        ("lora_unet_final_layer_linear", "mmdit", M + "final_layer.linear.weight", 0, 64, False),
        ("lora_te1_text_model_encoder_layers_0_self_attn_q_proj", "clip_l", "text_model.encoder.layers.0.self_attn.q_proj.weight", 0, 48, False),
        ("lora_te1_text_model_encoder_layers_1_mlp_fc2", "clip_l", "text_model.encoder.layers.1.mlp.fc2.weight", 0, 48, False),
        ("lora_te2_text_model_encoder_layers_0_self_attn_out_proj", "clip_g", "text_model.encoder.layers.0.self_attn.out_proj.weight", 0, 64, False),
        ("lora_te3_encoder_block_0_layer_1_DenseReluDense_wi_0", "t5", "encoder.block.0.layer.1.DenseReluDense.wi_0.weight", 0, 256, False),
    ]
    official = [
        (M + "joint_blocks.0.x_block.attn.qkv", "mmdit", M + "joint_blocks.0.x_block.attn.qkv.weight", 0, 3 * D, False),
        (M + "joint_blocks.1.x_block.attn.proj", "mmdit", M + "joint_blocks.1.x_block.attn.proj.weight", 0, D, False),
        (M + "y_embedder.mlp.0", "mmdit", M + "y_embedder.mlp.0.weight", 0, D, False),
    ]

    loras = {}  # name -> list of (part, key, row0, rows, swap, A f32, B f32, scale per unit strength)

    def make(name, table, rank, alpha, fdtype, stname, up, down, alpha_suffix):
        tensors, mods = {}, []
        for mod, part, key, r0, rows, swap in table:
            cols = models[part][key][1].shape[1]
            a, b = factors(rows, cols, rank, fdtype)
            tensors[mod + down] = (stname, a)
            tensors[mod + up] = (stname, b)
            if alpha is not None:
                tensors[mod + alpha_suffix] = ("F32", np.array(alpha, dtype=np.float32))
            scale = (alpha if alpha is not None else rank) / rank
            mods.append((part, key, r0, rows, swap, a.astype(np.float32), b.astype(np.float32), scale))
        return tensors, mods

    t, loras["diffusers"] = make("diffusers", diffusers, 4, None, np.float32, "F32",
                                 ".lora_B.weight", ".lora_A.weight", None)
    write_st(out + "/diffusers.safetensors", t)
    t, loras["kohya"] = make("kohya", kohya, 4, 2.0, np.float32, "F32",
                             ".lora_up.weight", ".lora_down.weight", ".alpha")
    # a module naming no layer and a key of no LoRA form: both counted as unmatched
    t["lora_unet_joint_blocks_7_x_block_attn_qkv.lora_down.weight"] = ("F32", np.zeros((4, D), np.float32))
    t["lora_unet_joint_blocks_7_x_block_attn_qkv.lora_up.weight"] = ("F32", np.zeros((3 * D, 4), np.float32))
    t["lora_unet_joint_blocks_0_x_block_attn_qkv.dora_scale"] = ("F32", np.ones((1, D), np.float32))
    write_st(out + "/kohya.safetensors", t)
    t, loras["official"] = make("official", official, 2, 3.0, np.float16, "F16",
                                ".lora_up.weight", ".lora_down.weight", ".alpha")
    write_st(out + "/official.safetensors", t)

    scenarios = {
        "diffusers": [("diffusers", 1.0)],
        "kohya": [("kohya", 0.8)],
        "official": [("official", -1.5)],
        "pair": [("kohya", 0.8), ("official", -1.5)],
    }
    expected = {}
    for scen, items in scenarios.items():
        merged = {}
        for lname, strength in items:
            for part, key, r0, rows, swap, a, b, scale in loras[lname]:
                if (part, key) not in merged:
                    dt, w = models[part][key]
                    merged[(part, key)] = (dt, to_f32(dt, w).copy())
                d = (b @ a).astype(np.float32)
                if swap:  # diffusers (scale, shift) rows -> reference (shift, scale)
                    h = rows // 2
                    d = np.concatenate([d[h:], d[:h]])
                s = np.float32(strength * scale)
                w = merged[(part, key)][1]
                w[r0:r0 + rows] = w[r0:r0 + rows] + s * d
        for (part, key), (dt, w) in merged.items():
            # the pair's other tensors equal the single scenarios' (same strengths): only the
            # tensors both LoRAs touch are stored for it
            if scen == "pair" and sum(key == k for ln, _ in items for _, k, *_r in loras[ln]) < 2:
                continue
            expected[f"{scen}/{part}/{key}"] = (dt, from_f32(dt, w))
    write_st(out + "/expected.safetensors", expected)


def random_for(model, out, rank=16):
    """A kohya LoRA (rank 16, alpha 16, fp16) on every attention qkv/proj of the MMDiT in
    `model` (e.g. tools/make-random-sd35.py's full-size checkpoint), for timing
    (tests/bench/bench_lora.c); only the header of `model` is read."""
    b = open(model, "rb").read(8)
    n = struct.unpack("<Q", b)[0]
    with open(model, "rb") as f:
        f.seek(8)
        h = json.loads(f.read(n))
    tensors = {}
    M = "model.diffusion_model."
    for k, v in sorted(h.items()):
        if not k.startswith(M) or not k.endswith(".weight") or len(v["shape"]) != 2:
            continue
        name = k[len(M):-len(".weight")]
        if ".attn.qkv" not in name and ".attn.proj" not in name and ".attn2." not in name:
            continue
        mod = "lora_unet_" + name.replace(".", "_")
        o, i = v["shape"]
        tensors[mod + ".lora_down.weight"] = ("F16", (rng.standard_normal((rank, i)) * 0.01).astype(np.float16))
        tensors[mod + ".lora_up.weight"] = ("F16", (rng.standard_normal((o, rank)) * 0.01).astype(np.float16))
        tensors[mod + ".alpha"] = ("F32", np.array(float(rank), dtype=np.float32))
    write_st(out, tensors)
    print(f"{out}: {len(tensors) // 3} modules")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--random-for":
        random_for(sys.argv[2], sys.argv[3])
    else:
        main()
