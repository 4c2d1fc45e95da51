"""The public SD3.5 MMDiT configurations as diffusers' SD3Transformer2DModel takes them, for the
peer benchmarks (tools/bench-diffusers.py on the GPU, tools/bench-torch-cpu-step.py on the CPU):
Medium d = 1536 (24 layers, MMDiT-X dual attention in 0-12, pos_embed 384²), Large (and Turbo)
d = 2432 (38 layers, pos_embed 192²).  The head count equals the depth and d = 64 · depth."""


def mmdit_config(variant, depth=None):
    """variant "medium", "large" or "turbo"; depth overrides the layer count (smoke tests)."""
    medium = variant == "medium"
    if depth is None:
        depth = 24 if medium else 38
    return dict(sample_size=128, patch_size=2, in_channels=16, out_channels=16,
                num_layers=depth, attention_head_dim=64, num_attention_heads=depth,
                joint_attention_dim=4096, caption_projection_dim=64 * depth,
                pooled_projection_dim=2048, pos_embed_max_size=384 if medium else 192,
                qk_norm="rms_norm",
                dual_attention_layers=tuple(range(min(13, depth))) if medium else ())
