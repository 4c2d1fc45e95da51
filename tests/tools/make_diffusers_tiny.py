#!/usr/bin/env python3
"""make_diffusers_tiny.py — the golden tiny models converted to the diffusers layout by
diffusers' OWN conversion code, to cross-check engine/names_diffusers.c against it.

Not run by CI (it needs the diffusers wheel).  Neither torch nor numpy is needed: the
conversion functions are taken from the wheel's diffusers/loaders/single_file_utils.py
(convert_sd3_transformer_checkpoint_to_diffusers, convert_ldm_vae_checkpoint and their
helpers) and run on stand-in tensors that only record which bytes of which golden tensor they
are (torch.chunk / torch.cat / tensor.chunk / [:, :, 0, 0] are all that code uses); the output
files are then written from those byte ranges.

    python3 -m pip download --no-deps --only-binary=:all: -d .whl diffusers==0.42.1
    python3 tests/tools/make_diffusers_tiny.py --wheel .whl/diffusers-0.42.1-py3-none-any.whl \
        --shared ../shared --out /tmp/diffusers-tiny
    SD35_DIFFUSERS_TINY=/tmp/diffusers-tiny meson test -C BUILD diffusers

writes OUT/large/ (transformer as two shards + index) and OUT/medium/ (one file), each with
transformer/ and vae/; tests/parity/test_diffusers.c checks them like its own C-made copies.
"""
import argparse
import ast
import json
import os
import struct
import types
import zipfile

FUNCS = ["convert_sd3_transformer_checkpoint_to_diffusers", "swap_scale_shift",
         "get_attn2_layers", "get_caption_projection_dim", "convert_ldm_vae_checkpoint",
         "update_vae_resnet_ldm_to_diffusers", "update_vae_attentions_ldm_to_diffusers",
         "conv_attn_to_linear"]
CONSTS = ["DIFFUSERS_TO_LDM_MAPPING", "LDM_VAE_KEYS"]


class T:
    """A tensor stand-in: dim-0 byte ranges [(key, start, end)] of golden tensors."""

    def __init__(self, parts, shape, dtype):
        self.parts, self.shape, self.dtype = parts, tuple(shape), dtype

    @property
    def ndim(self):
        return len(self.shape)

    def nbytes(self):
        return sum(e - s for _, s, e in self.parts)

    def rows(self, r0, r1):
        per = self.nbytes() // self.shape[0]
        lo, hi, out, pos = r0 * per, r1 * per, [], 0
        for k, s, e in self.parts:
            a, b = max(lo, pos), min(hi, pos + e - s)
            if a < b:
                out.append((k, s + a - pos, s + b - pos))
            pos += e - s
        return T(out, (r1 - r0,) + self.shape[1:], self.dtype)

    def chunk(self, n, dim=0):
        assert dim == 0 and self.shape[0] % n == 0
        m = self.shape[0] // n
        return tuple(self.rows(i * m, (i + 1) * m) for i in range(n))

    def __getitem__(self, idx):  # [:, :, 0] / [:, :, 0, 0]: a 1×1 conv seen as Linear
        assert all(i == slice(None) for i in idx[:2]) and all(i == 0 for i in idx[2:])
        assert all(d == 1 for d in self.shape[2:len(idx)])
        return T(self.parts, self.shape[:2] + self.shape[len(idx):], self.dtype)


def cat(ts, dim=0):
    assert dim == 0
    return T([p for t in ts for p in t.parts], (sum(t.shape[0] for t in ts),) + ts[0].shape[1:],
             ts[0].dtype)


def chunk(t, n, dim=0):
    return t.chunk(n, dim)


def load_converters(wheel):
    src = zipfile.ZipFile(wheel).read("diffusers/loaders/single_file_utils.py").decode()
    ns = {"torch": types.SimpleNamespace(cat=cat, chunk=chunk)}
    for node in ast.parse(src).body:
        if (isinstance(node, ast.FunctionDef) and node.name in FUNCS) or (
                isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id in CONSTS):
            exec(compile(ast.Module([node], []), "single_file_utils.py", "exec"), ns)
    missing = [n for n in FUNCS + CONSTS if n not in ns]
    if missing:
        raise SystemExit(f"{wheel}: not found in single_file_utils.py: {missing}")
    return ns


def read_st(path):
    with open(path, "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    header.pop("__metadata__", None)
    data = blob[8 + n:]
    sd = {k: T([(k, *v["data_offsets"])], v["shape"], v["dtype"]) for k, v in header.items()}
    return sd, data


def write_st(path, tensors, data):
    header, chunks, off = {}, [], 0
    for k, t in tensors.items():
        b = b"".join(data[s:e] for _, s, e in t.parts)
        header[k] = {"dtype": t.dtype, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        chunks.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(chunks))


def convert(ns, model, out, shards):
    sd, data = read_st(model)
    vae_sd = {k: v for k, v in sd.items() if k.startswith("first_stage_model.")}
    n_up = 1 + max(int(k.split(".")[3]) for k in vae_sd if k.startswith("first_stage_model.decoder.up."))
    vae = ns["convert_ldm_vae_checkpoint"](vae_sd, {"down_block_types": ["DownEncoderBlock2D"] * n_up,
                                                    "up_block_types": ["UpDecoderBlock2D"] * n_up})
    mmdit = ns["convert_sd3_transformer_checkpoint_to_diffusers"](
        {k: v for k, v in sd.items() if k.startswith("model.diffusion_model.")})
    write_st(os.path.join(out, "vae", "diffusion_pytorch_model.safetensors"), vae, data)
    keys = sorted(mmdit)
    if shards == 1:
        write_st(os.path.join(out, "transformer", "diffusion_pytorch_model.safetensors"), mmdit, data)
    else:
        wm = {}
        for s in range(shards):
            leaf = f"diffusion_pytorch_model-{s + 1:05d}-of-{shards:05d}.safetensors"
            part = {k: mmdit[k] for k in keys[s::shards]}
            write_st(os.path.join(out, "transformer", leaf), part, data)
            wm.update({k: leaf for k in part})
        with open(os.path.join(out, "transformer", "diffusion_pytorch_model.safetensors.index.json"),
                  "w") as f:
            json.dump({"metadata": {}, "weight_map": wm}, f, indent=1)
    with open(os.path.join(out, "model_index.json"), "w") as f:
        json.dump({"_class_name": "StableDiffusion3Pipeline"}, f)
    print(f"{model}: {len(mmdit)} transformer + {len(vae)} VAE tensors → {out}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wheel", required=True, help="diffusers-*.whl")
    ap.add_argument("--shared", required=True, help="the ../shared folder (golden/models)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    ns = load_converters(a.wheel)
    models = os.path.join(a.shared, "golden", "models")
    convert(ns, os.path.join(models, "sd3.5_tiny_large.safetensors"), os.path.join(a.out, "large"), 2)
    convert(ns, os.path.join(models, "sd3.5_tiny_medium.safetensors"), os.path.join(a.out, "medium"), 1)


if __name__ == "__main__":
    main()
