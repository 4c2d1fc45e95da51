#!/usr/bin/env python3
"""bench-diffusers.py — the shapes of `sd35 bench` in diffusers/PyTorch (bf16, SDPA), for a
side-by-side on one machine.

Models are built from config dicts with random init (no download): SD3Transformer2DModel
(Large / Medium / Turbo = the Large network), AutoencoderKL with the SD3 VAE config (16 latent
channels), and transformers' CLIP-L, CLIP-G and T5-XXL encoders.  Timing: CUDA events around
each run after warm-ups, median of the timed runs; peak memory from
torch.cuda.max_memory_allocated() per stage.  Eager mode (no torch.compile).

usage: tools/bench-diffusers.py [--variant large|medium|turbo] [--size 1024] [--steps N]
                                [--iters 10] [--warmup 2] [--t5-tokens 77]
                                [--stages gemm,text,mmdit,vae] [--json FILE]
"""
import argparse
import json
import sys
import time

import torch

from sd3_mmdit_config import mmdit_config

DEV = "cuda"
TINY = False  # --tiny: 2 layers everywhere (a smoke test of this script, not a benchmark)

# FLOP counts: the same formulas as engine/dev/bench.c (2 FLOP per multiply-add).


def mmdit_flop(depth, B, h, w, n_ctx, attn2_blocks):
    D = 64 * depth
    nx = (h // 2) * (w // 2)
    nc = n_ctx
    n = nx + nc
    f = 2.0 * nx * 16 * 4 * D + 2.0 * nc * 4096 * D
    f += 2.0 * (256 * D + D * D + 2048 * D + D * D)
    for i in range(depth):
        pre_only = i == depth - 1
        a2 = i in attn2_blocks
        f += 2.0 * ((9 if a2 else 6) + (2 if pre_only else 6)) * D * D
        f += 2.0 * nx * 12 * D * D
        f += 2.0 * nc * (3 if pre_only else 12) * D * D
        f += 4.0 * n * n * D
        if a2:
            f += 2.0 * nx * 4 * D * D + 4.0 * nx * nx * D
    f += 4.0 * D * D + 2.0 * nx * D * 64
    return f * B


def conv_flop(co, ci, k, ho, wo):
    return 2.0 * co * ci * k * k * ho * wo


def resnet_flop(cin, cout, h, w):
    f = conv_flop(cout, cin, 3, h, w) + conv_flop(cout, cout, 3, h, w)
    return f + (conv_flop(cout, cin, 1, h, w) if cin != cout else 0.0)


def vae_decode_flop(h, w):
    widths = [128, 256, 512, 512]
    c = 512
    f = conv_flop(c, 16, 3, h, w) + 2 * resnet_flop(c, c, h, w)
    hw = h * w
    f += 2.0 * hw * 4 * c * c + 4.0 * hw * hw * c
    for i in range(3, -1, -1):
        for _ in range(3):
            f += resnet_flop(c, widths[i], h, w)
            c = widths[i]
        if i != 0:
            h, w = 2 * h, 2 * w
            f += conv_flop(c, c, 3, h, w)
    return f + conv_flop(3, c, 3, h, w)


def tenc_flop(layers, D, F, L, gated):
    return layers * (2.0 * L * (4 * D * D + (3 if gated else 2) * D * F) + 4.0 * L * L * D)


def text_flop(t5_tokens):
    n = (2, 2, 2) if TINY else (12, 32, 24)
    return (tenc_flop(n[0], 768, 3072, 77, False) + tenc_flop(n[1], 1280, 5120, 77, False)
            + 2.0 * 1280 * 1280 + tenc_flop(n[2], 4096, 10240, t5_tokens, True))


def time_cuda(fn, warmup, iters):
    """median ms of fn() with CUDA events (host clock on --device cpu); returns (median, min,
    max, last output)"""
    out = None
    for _ in range(warmup):
        out = fn()
    times = []
    if DEV == "cpu":
        for _ in range(iters):
            t0 = time.perf_counter()
            out = fn()
            times.append(1e3 * (time.perf_counter() - t0))
    else:
        torch.cuda.synchronize()
        for _ in range(iters):
            start = torch.cuda.Event(enable_timing=True)
            stop = torch.cuda.Event(enable_timing=True)
            start.record()
            out = fn()
            stop.record()
            stop.synchronize()
            times.append(start.elapsed_time(stop))
    times.sort()
    n = len(times)
    med = times[n // 2] if n % 2 else 0.5 * (times[n // 2 - 1] + times[n // 2])
    return med, times[0], times[-1], out


def finite(t):
    if isinstance(t, (tuple, list)):
        return all(finite(x) for x in t)
    return bool(torch.isfinite(t.float()).all().item())


def reset_mem():
    if DEV == "cuda":
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def mem_mib(peak):
    if DEV != "cuda":
        return 0.0
    return (torch.cuda.max_memory_allocated() if peak else torch.cuda.memory_allocated()) / 2**20


def build(ctor):
    """random init directly on the GPU in bf16"""
    torch.set_default_device(DEV)
    torch.set_default_dtype(torch.bfloat16)
    try:
        m = ctor()
    finally:
        torch.set_default_dtype(torch.float32)
        torch.set_default_device("cpu")
    return m.to(device=DEV, dtype=torch.bfloat16).eval()


def stage_gemm(args, res):
    n = args.gemm
    a = torch.randn(n, n, device=DEV, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=DEV, dtype=torch.bfloat16) * 0.02
    reps = 8

    def run():
        for _ in range(reps):
            c = torch.nn.functional.linear(a, b)
        return c

    med, lo, hi, out = time_cuda(run, args.warmup + 1, args.iters)
    res["gemm"] = dict(ms=med / reps, min=lo / reps, max=hi / reps, flop=2.0 * n ** 3,
                       finite=finite(out), peak_mib=mem_mib(True))


def stage_text(args, res):
    from transformers import (CLIPTextConfig, CLIPTextModelWithProjection, T5Config,
                              T5EncoderModel)
    reset_mem()
    cl = build(lambda: CLIPTextModelWithProjection(CLIPTextConfig(
        vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=2 if TINY else 12,
        num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu",
        projection_dim=768)))
    cg = build(lambda: CLIPTextModelWithProjection(CLIPTextConfig(
        vocab_size=49408, hidden_size=1280, intermediate_size=5120, num_hidden_layers=2 if TINY else 32,
        num_attention_heads=20, max_position_embeddings=77, hidden_act="gelu",
        projection_dim=1280)))
    t5 = build(lambda: T5EncoderModel(T5Config(
        vocab_size=32128, d_model=4096, d_kv=64, d_ff=10240, num_layers=2 if TINY else 24, num_heads=64,
        feed_forward_proj="gated-gelu", relative_attention_num_buckets=32,
        relative_attention_max_distance=128, is_encoder_decoder=False, use_cache=False)))
    ids = torch.arange(77, device=DEV).remainder(49407).unsqueeze(0)
    ids[0, 20] = 49407
    tids = (torch.arange(args.t5_tokens, device=DEV) * 7919).remainder(32127).unsqueeze(0)
    weights = mem_mib(False)

    def run():
        with torch.inference_mode():
            a = cl(ids, output_hidden_states=True)
            b = cg(ids, output_hidden_states=True)
            c = t5(tids)
        return (a.hidden_states[-2], b.hidden_states[-2], b.text_embeds,
                c.last_hidden_state)

    med, lo, hi, out = time_cuda(run, args.warmup, args.iters)
    res["text"] = dict(ms=med, min=lo, max=hi, flop=text_flop(args.t5_tokens),
                       finite=finite(out), weights_mib=weights,
                       peak_mib=mem_mib(True))
    del cl, cg, t5, out


def stage_mmdit(args, res):
    from diffusers import SD3Transformer2DModel
    reset_mem()
    cfg = mmdit_config(args.variant, depth=2 if TINY else None)
    m = build(lambda: SD3Transformer2DModel(**cfg))
    B = 1 if args.variant == "turbo" else 2
    h = w = args.size // 8
    n_ctx = 77 + args.t5_tokens
    x = torch.randn(B, 16, h, w, device=DEV, dtype=torch.bfloat16)
    ctx = torch.rand(B, n_ctx, 4096, device=DEV, dtype=torch.bfloat16) * 2 - 1
    y = torch.rand(B, 2048, device=DEV, dtype=torch.bfloat16) * 2 - 1
    t = torch.full((B,), 1000.0, device=DEV)
    weights = mem_mib(False)

    def run():
        with torch.inference_mode():
            return m(hidden_states=x, encoder_hidden_states=ctx, pooled_projections=y,
                     timestep=t, return_dict=False)[0]

    med, lo, hi, out = time_cuda(run, args.warmup, args.iters)
    res["mmdit"] = dict(ms=med, min=lo, max=hi, batch=B,
                        flop=mmdit_flop(cfg["num_layers"], B, h, w, n_ctx,
                                        set(cfg["dual_attention_layers"])),
                        finite=finite(out), weights_mib=weights,
                        peak_mib=mem_mib(True))
    del m, out


def stage_vae(args, res):
    from diffusers import AutoencoderKL
    reset_mem()
    vae = build(lambda: AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(128, 256, 512, 512),
        layers_per_block=2, act_fn="silu", latent_channels=16, norm_num_groups=32,
        sample_size=1024, scaling_factor=1.5305, shift_factor=0.0609,
        use_quant_conv=False, use_post_quant_conv=False, mid_block_add_attention=True))
    h = w = args.size // 8
    z = torch.randn(1, 16, h, w, device=DEV, dtype=torch.bfloat16)
    weights = mem_mib(False)

    def run():
        with torch.inference_mode():
            return vae.decode(z, return_dict=False)[0]

    med, lo, hi, out = time_cuda(run, args.warmup, args.iters)
    res["vae"] = dict(ms=med, min=lo, max=hi, flop=vae_decode_flop(h, w), finite=finite(out),
                      weights_mib=weights, peak_mib=mem_mib(True))
    del vae, out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--variant", default="large", choices=["large", "medium", "turbo"])
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--steps", type=int, default=0)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--t5-tokens", type=int, default=77)
    p.add_argument("--gemm", type=int, default=8192)
    p.add_argument("--stages", default="gemm,text,mmdit,vae")
    p.add_argument("--json", default=None)
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--tiny", action="store_true", help="2 layers per model (smoke test)")
    args = p.parse_args()
    global DEV, TINY
    DEV, TINY = args.device, args.tiny
    steps = args.steps or (4 if args.variant == "turbo" else 28)
    if DEV == "cuda" and not torch.cuda.is_available():
        sys.exit("bench-diffusers: no CUDA device")
    torch.backends.cuda.matmul.allow_tf32 = True
    import diffusers
    import transformers
    print(f"bench-diffusers: {args.variant} {args.size}x{args.size}, T5 tokens {args.t5_tokens}"
          f", torch {torch.__version__}, diffusers {diffusers.__version__}, transformers "
          f"{transformers.__version__}, "
          f"{torch.cuda.get_device_name() if DEV == 'cuda' else 'CPU'}{' TINY' if TINY else ''}"
          f", bf16 eager, SDPA; "
          f"{args.warmup} warm-up + {args.iters} timed runs, CUDA events, median", flush=True)
    res = {}
    stages = dict(gemm=stage_gemm, text=stage_text, mmdit=stage_mmdit, vae=stage_vae)
    for s in args.stages.split(","):
        t0 = time.time()
        try:
            stages[s](args, res)
        except Exception as e:  # keep the other stages' numbers
            print(f"bench-diffusers: stage {s} failed: {type(e).__name__}: {e}", flush=True)
            res[s] = dict(error=f"{type(e).__name__}: {e}")
        print(f"  stage {s} done in {time.time() - t0:.1f} s", flush=True)
        reset_mem()
    peak = None
    if "ms" in res.get("gemm", {}):
        peak = res["gemm"]["flop"] / (res["gemm"]["ms"] * 1e-3) / 1e12
    print(f"\n{'stage':<36} {'median ms':>10} {'min ms':>10} {'max ms':>10} {'GFLOP':>10} "
          f"{'TFLOP/s':>8} {'%peak':>6} {'peak MiB':>9}  finite")
    labels = dict(gemm=f"matmul peak (F.linear {args.gemm}^3)",
                  text="text encoders (L + G + T5), 1 prompt",
                  mmdit="MMDiT step (%s)" % ("batch 1" if args.variant == "turbo"
                                             else "CFG, batch 2"),
                  vae=f"VAE decode {args.size}x{args.size}")
    for s in ["gemm", "text", "mmdit", "vae"]:
        r = res.get(s)
        if not r or "ms" not in r:
            continue
        tf = r["flop"] / (r["ms"] * 1e-3) / 1e12
        r["tflops"] = tf
        print(f"{labels[s]:<36} {r['ms']:10.2f} {r['min']:10.2f} {r['max']:10.2f} "
              f"{r['flop'] / 1e9:10.1f} {tf:8.2f} {100 * tf / peak if peak else 0:6.1f} "
              f"{r['peak_mib']:9.1f}  {'yes' if r['finite'] else 'NO'}")
    if all("ms" in res.get(s, {}) for s in ["text", "mmdit", "vae"]):
        prompts = 1 if args.variant == "turbo" else 2
        e2e = prompts * res["text"]["ms"] + steps * res["mmdit"]["ms"] + res["vae"]["ms"]
        res["e2e_ms"] = e2e
        print(f"\nend-to-end estimate, {steps} steps: {prompts} x text + {steps} x step + VAE "
              f"decode = {e2e:.1f} ms")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(args=vars(args), results=res), f, indent=1)


if __name__ == "__main__":
    main()
