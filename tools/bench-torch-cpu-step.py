#!/usr/bin/env python3
"""PyTorch's fp32 MMDiT step on the CPU, on the weights of an official SD3.5 single file: the
peer figure of docs/PERFORMANCE.md's CPU section ("the MMDiT step at least as fast as PyTorch's
fp32 step on the same weights and threads", issue 14).

Loads the file's `model.diffusion_model.*` tensors, converts them with diffusers' own
single-file converter (convert_sd3_transformer_checkpoint_to_diffusers) into an
SD3Transformer2DModel built from the public config (Medium: 24 layers, dual attention in
0-12; Large: 38), widened to fp32 (PyTorch's CPU matmul path; bf16/fp16 CPU GEMMs are slower
there), and times single forwards: batch 1 (cfg 1), latent size/8, context 154 tokens
(77 CLIP + 77 T5, what the reference and `sd35 txt2img` use), eager, torch.inference_mode.

Needs torch + diffusers + safetensors (a venv from PyPI; never used by CI or the tests):
    tools/bench-torch-cpu-step.py --checkpoint /work/models/sd35m/sd3.5_medium.safetensors \
        --threads 2 --size 256 --iters 3
Prints per-forward wall and process-CPU seconds (median, min, max) and the peak RSS.
"""
import argparse
import resource
import statistics
import time

import torch
from diffusers import SD3Transformer2DModel
from diffusers.loaders.single_file_utils import convert_sd3_transformer_checkpoint_to_diffusers
from safetensors import safe_open

from sd3_mmdit_config import mmdit_config


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--variant", default="medium", choices=["medium", "large"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--context", type=int, default=154)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)

    t0 = time.monotonic()
    sd = {}
    with safe_open(a.checkpoint, framework="pt") as f:
        for k in f.keys():
            if k.startswith("model.diffusion_model."):
                sd[k] = f.get_tensor(k).to(torch.float32)
    sd = convert_sd3_transformer_checkpoint_to_diffusers(sd)
    with torch.device("meta"):
        model = SD3Transformer2DModel(**mmdit_config(a.variant))
    model.load_state_dict(sd, strict=True, assign=True)
    del sd
    model.eval()
    print(f"loaded {a.variant} fp32 in {time.monotonic() - t0:.1f} s, "
          f"{sum(t.numel() for t in model.parameters()) / 1e9:.3f} G parameters", flush=True)

    g = torch.Generator().manual_seed(1)
    h = a.size // 8
    x = torch.randn(1, 16, h, h, generator=g)
    ctx = torch.randn(1, a.context, 4096, generator=g)
    pooled = torch.randn(1, 2048, generator=g)
    ts = torch.tensor([1000.0])
    walls, cpus = [], []
    with torch.inference_mode():
        for i in range(a.warmup + a.iters):
            w0, c0 = time.monotonic(), time.process_time()
            out = model(hidden_states=x, encoder_hidden_states=ctx, pooled_projections=pooled,
                        timestep=ts, return_dict=False)[0]
            w, c = time.monotonic() - w0, time.process_time() - c0
            assert torch.isfinite(out).all()
            print(f"  forward {i + 1}{' (warm-up)' if i < a.warmup else ''}: wall {w:.2f} s, "
                  f"CPU {c:.2f} s", flush=True)
            if i >= a.warmup:
                walls.append(w)
                cpus.append(c)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"torch {torch.__version__}, {a.threads} threads, {a.size}², batch 1, context "
          f"{a.context}: wall median {statistics.median(walls):.2f} s (min {min(walls):.2f}, "
          f"max {max(walls):.2f}), CPU median {statistics.median(cpus):.2f} s; "
          f"peak RSS {rss:.2f} GiB")


if __name__ == "__main__":
    main()
