"""Builds the two tiny random Qwen2.5-VL checkpoints (flat/fp32/legacy names and nested/bf16/sharded/in-memory
names), writes their directories by hand and checks that transformers loads them back unchanged."""
import json
import os

import torch
from safetensors.torch import save_file
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

from .constants import CLIP_MEAN, CLIP_STD, TINY_MAX_PIXELS, TINY_MIN_PIXELS
from .tiny_tokenizer import write_tokenizer_files

PADDING_ROWS = 38          # embedding / lm_head rows the tokenizer never produces (like Qwen's 152064 > 151665)
# Row gains make the random models emit <|im_end|> and <|lvr_start|> now and then, so that the cases exercise the
# eos stop, <|im_end|> sampled during latent mode, and latent mode entered by a sampled <|lvr_start|>.
EOS_ROW_GAIN = 2.0         # <|im_end|> row of lm_head (tiny-flat) / of the tied embedding (tiny-nested)
LVR_START_ROW_GAIN = 1.8   # <|lvr_start|> row of lm_head (tiny-flat only; tiny-nested is tied)
EMBED_STD = 0.15           # small enough that layer outputs, not the token embedding, dominate the residual stream
INIT_SEEDS = {"tiny-flat": 1235, "tiny-nested": 5679}


def _text_fields(ids, vocab_size, kv_heads, tie):
    return {
        "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 3, "num_attention_heads": 4,
        "num_key_value_heads": kv_heads, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "vocab_size": vocab_size,
        "hidden_act": "silu", "max_position_embeddings": 32768, "max_window_layers": 3, "tie_word_embeddings": tie,
        "bos_token_id": ids["endoftext"], "eos_token_id": ids["im_end"],
    }


def _vision_fields(depth, fullatt):
    return {
        "depth": depth, "hidden_size": 32, "num_heads": 2, "intermediate_size": 48, "out_hidden_size": 64,
        "window_size": 112, "fullatt_block_indexes": fullatt, "patch_size": 14, "temporal_patch_size": 2,
        "spatial_merge_size": 2, "hidden_act": "silu", "tokens_per_second": 2,
    }


def _token_fields(ids):
    return {
        "image_token_id": ids["image_pad"], "video_token_id": ids["video_pad"],
        "vision_start_token_id": ids["vision_start"], "vision_end_token_id": ids["vision_end"],
        "vision_token_id": ids["vision_pad"],
        # V-Reflection writes these four into config.json (method.md §2.2).
        "lvr_start_id": ids["lvr_start"], "lvr_id": ids["lvr"], "lvr_latent_end_id": ids["lvr_latent_end"],
        "lvr_end_id": ids["lvr_end"],
    }


def flat_config_json(ids, vocab_size):
    """Hand-written transformers-4.x / released-style flat config.json (model.md §1.1)."""
    text = _text_fields(ids, vocab_size, kv_heads=2, tie=False)
    vision = _vision_fields(depth=4, fullatt=[1, 3])
    vision.update({"in_chans": 3, "spatial_patch_size": 14})
    cfg = {"architectures": ["Qwen2_5_VLForConditionalGeneration"], "attention_dropout": 0.0, "model_type": "qwen2_5_vl"}
    cfg.update(text)
    cfg.update({"initializer_range": 0.02, "max_window_layers": 3, "sliding_window": 32768, "use_sliding_window": False,
                "use_cache": True, "torch_dtype": "float32"})
    cfg.update(_token_fields(ids))
    cfg["vision_config"] = vision
    cfg["rope_scaling"] = {"type": "mrope", "mrope_section": [2, 3, 3]}
    return cfg


def nested_config(ids, vocab_size):
    """transformers-5.x config object for tiny-nested; serialised with to_dict() (model.md §1.3 layout)."""
    text = _text_fields(ids, vocab_size, kv_heads=4, tie=True)
    text["rope_parameters"] = {"rope_type": "default", "type": "mrope", "mrope_section": [2, 3, 3],
                               "rope_theta": text.pop("rope_theta")}
    vision = _vision_fields(depth=3, fullatt=[2])
    vision["in_channels"] = 3
    cfg = Qwen2_5_VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=True, **_token_fields(ids))
    cfg.architectures = ["Qwen2_5_VLForConditionalGeneration"]
    return cfg


def _is_norm(name):
    return name.endswith(("norm1.weight", "norm2.weight", "ln_q.weight", "layernorm.weight", "norm.weight"))


def randomise(model, seed, eos_id, lvr_start_id):
    """Non-trivial random weights: norms 1+0.1*randn, biases 0.1*randn, linears randn/sqrt(fan_in)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            if _is_norm(name):
                value = 1.0 + 0.1 * noise
            elif name.endswith(".bias"):
                value = 0.1 * noise
            elif "embed_tokens" in name:
                value = EMBED_STD * noise
            elif name == "lm_head.weight":
                value = 0.25 * noise
            elif "patch_embed" in name:
                value = 0.03 * noise
            else:
                value = noise / (p.shape[1] ** 0.5)
            if name == "lm_head.weight" or ("embed_tokens" in name and model.config.tie_word_embeddings):
                value[eos_id] *= EOS_ROW_GAIN
            if name == "lm_head.weight":
                value[lvr_start_id] *= LVR_START_ROW_GAIN
            p.copy_(value)


def build_model(name, cfg, seed, eos_id, lvr_start_id, bf16_weights):
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration._from_config(cfg, attn_implementation="eager", dtype=torch.float32).eval()
    randomise(model, seed, eos_id, lvr_start_id)
    if bf16_weights:
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(p.to(torch.bfloat16).to(torch.float32))
    return model


def legacy_name(name):
    """In-memory name -> released on-disk name (model.md §2.2)."""
    if name.startswith("model.visual."):
        return "visual." + name[len("model.visual."):]
    if name.startswith("model.language_model."):
        return "model." + name[len("model.language_model."):]
    return name


def _state(model):
    sd = model.state_dict()
    if model.config.tie_word_embeddings:
        sd.pop("lm_head.weight", None)
    return {k: v.detach().clone().contiguous() for k, v in sd.items()}


def write_flat(model, out_dir, config_json):
    tensors = {legacy_name(k): v for k, v in _state(model).items()}
    save_file(tensors, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    _write_json(os.path.join(out_dir, "config.json"), config_json)


def write_nested(model, out_dir, n_shards=3):
    state = {k: v.to(torch.bfloat16) for k, v in _state(model).items()}
    names = sorted(state)
    total = sum(t.numel() * t.element_size() for t in state.values())
    shards, current, size = [], [], 0
    for n in names:       # greedy split into n_shards groups of about equal byte size, sorted by name
        current.append(n)
        size += state[n].numel() * state[n].element_size()
        if size >= total * (len(shards) + 1) / n_shards and len(shards) < n_shards - 1:
            shards.append(current)
            current = []
    shards.append(current)
    if len(shards) != n_shards:
        raise RuntimeError(f"sharding produced {len(shards)} shards")
    weight_map = {}
    for i, group in enumerate(shards):
        fname = f"model-{i + 1:05d}-of-{n_shards:05d}.safetensors"
        save_file({n: state[n] for n in group}, os.path.join(out_dir, fname), metadata={"format": "pt"})
        weight_map.update({n: fname for n in group})
    index = {"metadata": {"total_size": total, "total_parameters": sum(t.numel() for t in state.values())},
             "weight_map": dict(sorted(weight_map.items()))}
    _write_json(os.path.join(out_dir, "model.safetensors.index.json"), index)
    cfg = json.loads(model.config.to_json_string(use_diff=True))   # what save_pretrained writes
    for sub in (cfg, cfg["text_config"], cfg["vision_config"]):
        sub["dtype"] = "bfloat16"
    _write_json(os.path.join(out_dir, "config.json"), cfg)


def preprocessor_config():
    return {
        "processor_class": "Qwen2_5_VLProcessor",
        "image_processor_type": "Qwen2VLImageProcessor",
        "do_convert_rgb": True, "do_resize": True, "do_rescale": True, "do_normalize": True,
        "resample": 3, "rescale_factor": 1 / 255,
        "image_mean": CLIP_MEAN, "image_std": CLIP_STD,
        "min_pixels": TINY_MIN_PIXELS, "max_pixels": TINY_MAX_PIXELS,
        "size": {"shortest_edge": TINY_MIN_PIXELS, "longest_edge": TINY_MAX_PIXELS},
        "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2,
    }


def generation_config(ids):
    return {"bos_token_id": ids["endoftext"], "pad_token_id": ids["endoftext"], "do_sample": True,
            "eos_token_id": [ids["im_end"], ids["endoftext"]], "repetition_penalty": 1.05, "temperature": 1e-06}


def write_model_dir(name, model, out_dir, tok, ids, flat_cfg=None):
    os.makedirs(out_dir, exist_ok=True)
    for f in os.listdir(out_dir):
        os.remove(os.path.join(out_dir, f))
    if flat_cfg is not None:
        write_flat(model, out_dir, flat_cfg)
    else:
        write_nested(model, out_dir)
    write_tokenizer_files(tok, out_dir)
    _write_json(os.path.join(out_dir, "preprocessor_config.json"), preprocessor_config())
    _write_json(os.path.join(out_dir, "generation_config.json"), generation_config(ids))


def load_dir(out_dir, dtype):
    model, info = Qwen2_5_VLForConditionalGeneration.from_pretrained(
        out_dir, dtype=dtype, attn_implementation="eager", output_loading_info=True)
    bad = {k: v for k, v in info.items() if v}
    if bad:
        raise RuntimeError(f"{out_dir}: loading info not clean: {bad}")
    return model.eval()


def check_loaded_equals(source, loaded, label):
    """The reloaded fp32 model must hold exactly the source weights and the same config values."""
    a, b = source.state_dict(), loaded.state_dict()
    if set(a) != set(b):
        raise RuntimeError(f"{label}: parameter names differ: {set(a) ^ set(b)}")
    for k in a:
        if not torch.equal(a[k], b[k]):
            raise RuntimeError(f"{label}: tensor {k} differs after reload")
    if source.config.tie_word_embeddings:
        if loaded.lm_head.weight.data_ptr() != loaded.model.language_model.embed_tokens.weight.data_ptr():
            raise RuntimeError(f"{label}: lm_head is not tied after reload")
    expect_config(loaded, label)


EXPECTED = {
    "tiny-flat": {"kv": 2, "tie": False, "depth": 4, "fullatt": [1, 3]},
    "tiny-nested": {"kv": 4, "tie": True, "depth": 3, "fullatt": [2]},
}


def expect_config(model, label):
    """Checks the values transformers actually parsed against the intended architecture (catches a config layout
    that 5.x would silently read with defaults)."""
    e = EXPECTED[label]
    t, v = model.config.text_config, model.config.vision_config
    got = {
        "hidden": t.hidden_size, "layers": t.num_hidden_layers, "heads": t.num_attention_heads,
        "kv": t.num_key_value_heads, "inter": t.intermediate_size, "eps": t.rms_norm_eps,
        "mrope": list(t.rope_parameters["mrope_section"]), "theta": t.rope_parameters["rope_theta"],
        "tie": bool(model.config.tie_word_embeddings), "depth": v.depth, "vhidden": v.hidden_size,
        "vheads": v.num_heads, "vinter": v.intermediate_size, "vout": v.out_hidden_size, "window": v.window_size,
        "fullatt": list(v.fullatt_block_indexes), "patch": v.patch_size, "tpatch": v.temporal_patch_size,
        "merge": v.spatial_merge_size, "sliding": bool(t.use_sliding_window),
    }
    want = {"hidden": 64, "layers": 3, "heads": 4, "kv": e["kv"], "inter": 128, "eps": 1e-6, "mrope": [2, 3, 3],
            "theta": 1e6, "tie": e["tie"], "depth": e["depth"], "vhidden": 32, "vheads": 2, "vinter": 48, "vout": 64,
            "window": 112, "fullatt": e["fullatt"], "patch": 14, "tpatch": 2, "merge": 2, "sliding": False}
    if got != want:
        raise RuntimeError(f"{label}: parsed config {got} != intended {want}")
    if model.model.visual.rotary_pos_emb.inv_freq.numel() != 4:
        raise RuntimeError(f"{label}: vision RoPE should have 4 frequencies")


def _write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")
