#!/usr/bin/env python3
"""Regenerates every golden fixture under test/golden/ (see README.md). Run by hand, never in CI:

    /work/pyenv/bin/python test/golden/make_golden.py            # from the repository root

Steps: tiny tokenizer -> images -> two tiny random Qwen2.5-VL checkpoints (checked to reload unchanged) ->
decoding cases (fp32 + bf16 references) -> preprocessing vectors -> real-Qwen tokenizer vectors."""
import copy
import json
import os
import shutil
import sys

import torch

GOLDEN = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(GOLDEN))
sys.dont_write_bytecode = True   # keep __pycache__ out of the committed fixture folder
sys.path.insert(0, GOLDEN)

from pygolden import cases, images, tiny_models, tiny_tokenizer  # noqa: E402
from pygolden.preprocess_vectors import build_preprocess_json  # noqa: E402
from pygolden.qwen_tokenizer_vectors import build_tokenizer_vectors  # noqa: E402


def build_models(tok, ids):
    vocab_size = tok.get_vocab_size(with_added_tokens=True) + tiny_models.PADDING_ROWS
    flat_json = tiny_models.flat_config_json(ids, vocab_size)
    # Qwen2_5_VLConfig mutates the rope_scaling dict it is given, hence the deep copy.
    configs = {"tiny-flat": (tiny_models.Qwen2_5_VLConfig(**copy.deepcopy(flat_json)), False),
               "tiny-nested": (tiny_models.nested_config(ids, vocab_size), True)}
    sources = {name: tiny_models.build_model(name, cfg, tiny_models.INIT_SEEDS[name], ids["im_end"], ids["lvr_start"],
                                             bf16_weights=bf16)
               for name, (cfg, bf16) in configs.items()}
    loaded = {}
    for name, model in sources.items():
        out_dir = os.path.join(GOLDEN, "models", name)
        tiny_models.write_model_dir(name, model, out_dir, tok, ids, flat_json if name == "tiny-flat" else None)
        fp32 = tiny_models.load_dir(out_dir, torch.float32)
        tiny_models.check_loaded_equals(model, fp32, name)
        bf16 = tiny_models.load_dir(out_dir, torch.bfloat16)
        loaded[name] = (fp32, bf16)
    return sources, loaded


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    tok = tiny_tokenizer.train_tiny_tokenizer()
    ids = tiny_tokenizer.token_ids(tok)
    images.write_images(os.path.join(GOLDEN, "images"))
    sources, loaded = build_models(tok, ids)
    case_dir = os.path.join(GOLDEN, "cases")
    shutil.rmtree(case_dir, ignore_errors=True)
    for spec in cases.CASES:
        c = cases.run_case(spec, GOLDEN, loaded, sources, tok, ids)
        print(f"{c['case']}: L={c['prompt_length']} gen={c['generated_ids']} stop={c['stop_reason']} "
              f"margin={c['min_top2_margin']:.4f} bf16err={c['checks']['bf16_ref_logits_max_abs_vs_fp32']:.4f}")
    build_preprocess_json(GOLDEN)
    build_tokenizer_vectors(REPO, GOLDEN)
    with open(os.path.join(GOLDEN, "token_ids.json"), "w", encoding="utf-8") as f:
        json.dump(ids, f, indent=1)
        f.write("\n")
    print("done")


if __name__ == "__main__":
    main()
