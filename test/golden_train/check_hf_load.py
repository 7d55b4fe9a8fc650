"""Checks that a checkpoint written by `vreflect train-stage1/2` loads in transformers (run by hand).

    /path/to/python test/golden_train/check_hf_load.py runs/stage1

Loads the folder with Qwen2_5_VLForConditionalGeneration, requires no missing keys (the BCM / DAC tensors are
the only unexpected ones, as with upstream's own checkpoints in the plain HF class), and compares every loaded
tensor with the file's bytes. Exits non-zero on any difference.
"""
import sys

import torch
from safetensors.torch import load_file
from transformers import Qwen2_5_VLForConditionalGeneration


def main(folder: str) -> int:
    model, info = Qwen2_5_VLForConditionalGeneration.from_pretrained(folder, dtype=torch.float32, output_loading_info=True)
    missing = sorted(info["missing_keys"])
    unexpected = sorted(info["unexpected_keys"])
    bad_unexpected = [k for k in unexpected if not k.startswith(("box_feature_resampler.", "student_resampler."))]
    file_sd = load_file(f"{folder}/model.safetensors")
    loaded = model.state_dict()
    renames = [("model.language_model.", "model."), ("model.visual.", "visual.")]
    diffs = []
    for name, t in loaded.items():
        disk = name
        for a, b in renames:
            if disk.startswith(a):
                disk = b + disk[len(a):]
        if disk not in file_sd:
            if name == "lm_head.weight" and model.config.tie_word_embeddings:
                continue
            diffs.append(f"{name}: not in the file")
        elif not torch.equal(t, file_sd[disk].float()):
            diffs.append(f"{name}: values differ")
    print(f"missing {missing}; unexpected (BCM/DAC) {len(unexpected) - len(bad_unexpected)}; other unexpected {bad_unexpected}; "
          f"tensors compared {len(loaded)}; differences {diffs[:5]}")
    return 0 if not missing and not bad_unexpected and not diffs else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
