#!/usr/bin/env python3
"""Writes the seed corpora of the text and file parser fuzz targets (standard library only):
corpus_shard_index/, corpus_json/, corpus_spiece/, corpus_clip_files/, corpus_prompt/,
corpus_png/ beside this script.  Small valid files of each format plus a few broken ones; the
fuzzer mutates from there.  Files whose names start with "regress-" are findings kept as
regression inputs and are never rewritten."""
import json
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def put(corpus, name, data):
    d = os.path.join(HERE, corpus)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# shard index beside s1.safetensors ("a") and s2.safetensors ("b")
put("corpus_shard_index", "good", json.dumps(
    {"metadata": {"total_size": 16}, "weight_map": {"a": "s1.safetensors", "b": "s2.safetensors"}}))
put("corpus_shard_index", "wrong_shard", json.dumps({"weight_map": {"a": "s2.safetensors", "b": "s1.safetensors"}}))
put("corpus_shard_index", "missing_shard", json.dumps({"weight_map": {"a": "s3.safetensors"}}))
put("corpus_shard_index", "dotdot", json.dumps({"weight_map": {"a": "../s1.safetensors"}}))
put("corpus_shard_index", "deep", "{\"weight_map\":" + "[" * 100 + "]" * 100 + "}")

# config.json / tokenizer.json / model_index.json
put("corpus_json", "clip_config", json.dumps({"architectures": ["CLIPTextModelWithProjection"],
                                              "hidden_size": 768, "num_attention_heads": 12}))
put("corpus_json", "t5_config", json.dumps({"model_type": "t5", "d_model": 128, "num_heads": 2}))
put("corpus_json", "model_index", json.dumps({"_class_name": "StableDiffusion3Pipeline",
                                              "transformer": ["diffusers", "SD3Transformer2DModel"],
                                              "vae": ["diffusers", "AutoencoderKL"]}))
pieces = [["<pad>", 0.0], ["</s>", 0.0], ["<unk>", 0.0], ["\u2581", -2.0], ["\u2581a", -3.0],
          ["a", -4.0], ["\u2581photo", -5.0], ["\u2581of", -5.5], ["\u2581cat", -6.0], ["1", -7.0]]
put("corpus_json", "tokenizer_t5", json.dumps({
    "version": "1.0",
    "added_tokens": [{"id": 0, "content": "<pad>"}, {"id": 1, "content": "</s>"},
                     {"id": 2, "content": "<unk>"}],
    "normalizer": {"type": "Sequence", "normalizers": [{"type": "Replace", "content": " "}]},
    "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581"},
    "model": {"type": "Unigram", "unk_id": 2, "vocab": pieces}}))
put("corpus_json", "type_number", json.dumps({"normalizer": {"type": 7}, "model": {"type": 5, "vocab": []}}))
put("corpus_json", "deep", "[" * 200 + "]" * 200)


# spiece.model: ModelProto { repeated SentencePiece pieces = 1; TrainerSpec = 2; NormalizerSpec = 3 }
def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num, wire, payload):
    key = varint((num << 3) | wire)
    if wire == 2:
        return key + varint(len(payload)) + payload
    return key + payload


def piece(text, score, type_=1):
    return field(1, 2, field(1, 2, text.encode()) + field(2, 5, struct.pack("<f", score))
                 + field(3, 0, varint(type_)))


sp = b"".join(field(1, 2, piece(t, s, 2 if t == "<unk>" else 3 if t in ("<pad>", "</s>") else 1))
              for t, s in pieces)
trainer = field(2, 2, field(3, 0, varint(1)))
normalizer = field(3, 2, field(1, 2, b"identity") + field(3, 0, varint(1)) + field(4, 0, varint(1)))
put("corpus_spiece", "tiny", sp + trainer + normalizer)
put("corpus_spiece", "no_normalizer", sp + trainer)
put("corpus_spiece", "bpe_model_type", sp + field(2, 2, field(3, 0, varint(2))) + normalizer)
put("corpus_spiece", "cut", (sp + trainer + normalizer)[:37])

# CLIP vocab.json NUL merges.txt (tiny: refused for its size, which exercises the checks)
vocab = {"a": 0, "b": 1, "ab": 2, "a</w>": 3, "b</w>": 4, "ab</w>": 5}
put("corpus_clip_files", "tiny", json.dumps(vocab) + "\0#version: 0.2\na b\na b</w>\n")
put("corpus_clip_files", "dup_id", json.dumps({"a": 0, "b": 0}) + "\0#version: 0.2\na b\n")
put("corpus_clip_files", "three_fields", json.dumps(vocab) + "\0#version: 0.2\na b c\n")

# prompts (prompt weights and both tokenizers)
for i, p in enumerate(["a photo of a cat", "(masterpiece:1.2), [blurry], ((very detailed))",
                       "\\(escaped\\) (word:-0.5) (x:nan) (y:1e40) (z:)",
                       "<|startoftext|>CAPS \u00e9t\u00e9 \u732b 123 <extra_id_0></s>",
                       "((((((((((nested))))))))))", "tab\tnew\nline  spaces",
                       "\u0000\u200b\ufffd emoji \U0001F600"]):
    put("corpus_prompt", "p%d" % i, p)


# PNG: valid 2×2 RGB, gray, palette, 16-bit; an oversized header; a truncated one
def png(w, h, depth, color, raw, extra=b""):
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


put("corpus_png", "rgb", png(2, 2, 8, 2, b"\0" + bytes(range(6)) + b"\0" + bytes(range(6, 12))))
put("corpus_png", "gray", png(2, 2, 8, 0, b"\0\x10\x20\0\x30\x40"))
put("corpus_png", "rgb16", png(1, 1, 16, 2, b"\0" + bytes(range(6))))


def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)


put("corpus_png", "palette", png(2, 1, 8, 3, b"\0\0\1", chunk(b"PLTE", b"\xff\0\0\0\xff\0")))
put("corpus_png", "bomb", png(30000, 30000, 8, 2, b""))
put("corpus_png", "truncated", png(4, 4, 8, 2, b"\0" * 10)[:60])
