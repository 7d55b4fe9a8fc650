#!/usr/bin/env python3
"""Regenerates the training-step golden fixtures under test/golden_train/ (see README.md). Run by hand:

    /work/pyenv/bin/python test/golden_train/make_golden_train.py        # from the repository root

A PyTorch reference of one and two optimizer steps of stage 1 (BCM) and stage 2 (DAC) on the tiny golden
checkpoint test/golden/models/tiny-flat, fp32, without packing (one sample per micro-batch) and with it (several
samples per micro-batch, upstream's padded rows; gradient accumulation over two micro-batches in one step).
Writes cases.json (batches in our TrainBatch layout, per-micro-batch losses, grad norms), heads_init.safetensors
(the initial BCM/DAC weights both sides start from) and expected.safetensors (gradients before clipping and
weights after the last step).

    ... make_golden_train.py --only stage2_attn_half_packed,stage2_attn_zero_packed

regenerates only the named cases: their entries in cases.json and expected.safetensors are replaced (or added),
every other case's entries and heads_init.safetensors are kept as they are on disk (read back, written unchanged),
so adding a case cannot move the committed values of the others."""
import argparse
import json
import os
import sys

import numpy as np
import torch
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(os.path.dirname(HERE), "golden")
sys.dont_write_bytecode = True
sys.path.insert(0, GOLDEN)
sys.path.insert(0, HERE)

from transformers import Qwen2_5_VLForConditionalGeneration  # noqa: E402

from pytrain.heads import head_state, make_heads  # noqa: E402
from pytrain.reference import forward_loss  # noqa: E402
from pytrain.samples import make_sample, packed_batch, padded_batch  # noqa: E402

MODEL_DIR = os.path.join(GOLDEN, "models", "tiny-flat")
ADAMW = {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weightDecay": 0.1}
LRS = [2e-3, 1e-3]
MAX_GRAD_NORM = 1.0
GRADS = {  # gradients compared after each step (before clipping)
    "both": ["model.layers.0.self_attn.q_proj.weight", "model.layers.1.input_layernorm.weight",
             "model.layers.2.mlp.down_proj.weight", "model.norm.weight"],
    1: ["box_feature_resampler.queries", "box_feature_resampler.cross_attn.in_proj_weight",
        "box_feature_resampler.cross_attn.out_proj.bias", "box_feature_resampler.output_norm.weight"],
    2: ["student_resampler.cross_attn.in_proj_weight", "student_resampler.cross_attn.out_proj.weight",
        "student_resampler.output_norm.bias"],
}
STEP1_ONLY = ["lm_head.weight"]  # large: step 1 of the unpacked cases only
# weights after the last step (each also in GRADS: the test needs their gradients to tell apart the elements whose
# first AdamW updates are ill-conditioned, see train_parity.test.ts)
FINAL = {"both": ["model.layers.0.self_attn.q_proj.weight", "model.norm.weight"],
         1: ["box_feature_resampler.queries"], 2: ["student_resampler.cross_attn.out_proj.weight"]}


def samples(ids):
    rng = np.random.default_rng(7)
    return {
        "A": make_sample(rng, ids, [[1, 4, 6]], [[1, 2, 4, 5]], [11]),
        "B": make_sample(rng, ids, [[1, 6, 4]], [[0], [2, 3, 4, 5]], [12]),       # dummy box + a region, 16 slots
        "C": make_sample(rng, ids, [[1, 4, 4], [1, 4, 6]], [[0, 1, 2, 3]], [13, 14]),  # two images
        "D": make_sample(rng, ids, [[1, 8, 8]], [[5, 6, 9, 10]], [15]),           # 4 ViT windows
    }


# Stage 2's loss weight of the KL term (method.md §9.3) is 1.0 in the release; the two last cases change it (0.5, and
# 0 where the KL is logged but passes no gradient) and store a smaller set of gradients (SMALL_GRADS) to keep
# expected.safetensors small.
SMALL_GRADS = {2: ["model.layers.0.self_attn.q_proj.weight", "model.norm.weight",
                   "student_resampler.cross_attn.in_proj_weight", "student_resampler.cross_attn.out_proj.weight",
                   "student_resampler.output_norm.bias"]}

CASES = [  # steps -> micro-batches -> sample keys
    {"case": "stage1_single", "stage": 1, "steps": [[["A"]], [["B"]]]},
    {"case": "stage1_packed", "stage": 1, "steps": [[["A", "B", "C"]], [["D", "A"], ["C"]]]},
    {"case": "stage2_single", "stage": 2, "steps": [[["C"]], [["B"]]]},
    {"case": "stage2_packed", "stage": 2, "steps": [[["B", "C"]], [["A"], ["D", "B"]]]},
    {"case": "stage2_attn_half_packed", "stage": 2, "lambdaAttn": 0.5, "grads": SMALL_GRADS,
     "steps": [[["C", "A"]], [["B"], ["D"]]]},
    {"case": "stage2_attn_zero_packed", "stage": 2, "lambdaAttn": 0.0, "grads": SMALL_GRADS,
     "steps": [[["A", "B"]]]},
]


def run_case(spec, ids, smp, heads0, expected):
    stage, case = spec["stage"], spec["case"]
    lam, lam_attn = (0.5 if stage == 1 else 1.0), spec.get("lambdaAttn", 1.0)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(MODEL_DIR, dtype=torch.float32,
                                                               attn_implementation="eager").eval()
    model.model.visual.requires_grad_(False)
    D = model.config.text_config.hidden_size
    bcm, dac = make_heads(D, 8, 0)
    bcm.load_state_dict({k.split(".", 1)[1]: v for k, v in heads0.items() if k.startswith("box_feature_resampler.")})
    dac.load_state_dict({k.split(".", 1)[1]: v for k, v in heads0.items() if k.startswith("student_resampler.")})
    named = {"model." + n: p for n, p in model.model.language_model.named_parameters()}
    named["lm_head.weight"] = model.lm_head.weight
    head, prefix = (bcm, "box_feature_resampler.") if stage == 1 else (dac, "student_resampler.")
    bcm.requires_grad_(stage == 1)
    named.update({prefix + n: p for n, p in head.named_parameters()})
    params = list(named.values())
    opt = torch.optim.AdamW(
        [{"params": [p for p in params if p.ndim >= 2], "weight_decay": ADAMW["weightDecay"]},
         {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}],
        lr=LRS[0], betas=(ADAMW["beta1"], ADAMW["beta2"]), eps=ADAMW["eps"])
    out = {"case": case, "stage": stage, "lambdaResampler": lam, "lambdaAttn": lam_attn, "maxGradNorm": MAX_GRAD_NORM,
           "adamw": ADAMW, "steps": []}
    for k, micro in enumerate(spec["steps"]):
        ga, step = len(micro), {"lr": LRS[k], "micro": []}
        for keys in micro:
            group = [smp[x] for x in keys]
            total, logged = forward_loss(model, bcm, dac, padded_batch(group, ids), ids, stage, lam, lam_attn)
            (total / ga).backward()
            step["micro"].append({"samples": keys, "gradScale": 1.0 / ga, "batch": packed_batch(group, ids, stage),
                                  "expected": logged})
        names = (spec["grads"][stage] if "grads" in spec else
                 GRADS["both"] + GRADS[stage] + (STEP1_ONLY if k == 0 and case.endswith("_single") else []))
        for n in names:
            expected[f"{case}.step{k + 1}.grad.{n}"] = named[n].grad.detach().clone().contiguous()
        step["grads"] = names
        step["gradNorm"] = float(torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM))
        for g in opt.param_groups:
            g["lr"] = LRS[k]
        opt.step()
        opt.zero_grad(set_to_none=True)
        out["steps"].append(step)
        print(f"{case} step {k + 1}: " + ", ".join(
            f"{m['expected']['loss']:.6f} (ce {m['expected']['loss_ce']:.6f} res {m['expected']['loss_resampler']:.6f})"
            for m in step["micro"]) + f" grad_norm {step['gradNorm']:.6f}")
    out["final"] = FINAL["both"] + FINAL[stage]
    for n in out["final"]:
        expected[f"{case}.final.{n}"] = named[n].detach().clone().contiguous()
    return out


def _save(tensors, name):
    path = os.path.join(HERE, name)
    save_file(tensors, path, metadata={"format": "pt"})
    os.chmod(path, 0o644)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", help="comma-separated case names: regenerate these, keep the others' committed outputs")
    only = ap.parse_args().only
    only = set(only.split(",")) if only else None
    unknown = (only or set()) - {c["case"] for c in CASES}
    if unknown:
        sys.exit(f"--only: unknown case(s) {sorted(unknown)}")
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    with open(os.path.join(GOLDEN, "token_ids.json")) as f:
        ids = json.load(f)
    smp = samples(ids)
    expected, kept = {}, {}
    if only is None:
        bcm, dac = make_heads(64, 8, 1234)
        heads0 = {**head_state("box_feature_resampler", bcm), **head_state("student_resampler", dac)}
        _save(heads0, "heads_init.safetensors")
    else:  # the committed files: other cases' entries and tensors pass through untouched
        heads0 = load_file(os.path.join(HERE, "heads_init.safetensors"))
        with open(os.path.join(HERE, "cases.json")) as f:
            committed = json.load(f)
        kept = {c["case"]: c for c in committed["cases"] if c["case"] not in only}
        now = {"torch": torch.__version__, "transformers": __import__("transformers").__version__}
        if committed["versions"] != now:  # cases.json records one set of versions for every case
            print(f"warning: the committed cases were made with {committed['versions']}, these with {now}",
                  file=sys.stderr)
        expected = {k: v for k, v in load_file(os.path.join(HERE, "expected.safetensors")).items()
                    if k.split(".", 1)[0] not in only}
    cases = []
    for spec in CASES:
        if spec["case"] in kept:
            cases.append(kept[spec["case"]])
        elif only is None or spec["case"] in only:
            cases.append(run_case(spec, ids, smp, heads0, expected))
    _save(expected, "expected.safetensors")
    meta = {"generator": "test/golden_train/make_golden_train.py", "model_dir": "../golden/models/tiny-flat",
            "versions": {"torch": torch.__version__, "transformers": __import__("transformers").__version__},
            "pixel_values": "v[p, c] = float32(((p*131 + c*71 + seed*977) mod 1000) / 500 - 1), c < 1176",
            "token_ids": ids, "samples": smp, "cases": cases}
    with open(os.path.join(HERE, "cases.json"), "w") as f:
        json.dump(meta, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
