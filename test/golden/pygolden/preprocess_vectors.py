"""preprocess.json: per test image, resize target / grid / pixel_values hash at the released default limits and at
max_pixels = 1280*28*28, plus smart_resize vectors (model.md §3.3)."""
import os

import numpy as np
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

from .constants import (CAP_1280_MAX_PIXELS, CLIP_MEAN, CLIP_STD, DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS,
                        TINY_MAX_PIXELS, TINY_MIN_PIXELS)
from .images import IMAGE_SPECS, load_rgb, own_pixel_values, pre_resize, smart_resize_hf, smart_resize_qwen_vl_utils
from .util import f32_list, sha256_f32, sha256_u8, write_json

# (height, width) -> expected (height, width) at the default limits, from model.md §3.3 (checked there against HF).
SPEC_VECTORS_DEFAULT = [
    ((300, 451), (308, 448)), ((42, 70), (56, 56)), ((98, 98), (112, 112)), ((126, 126), (112, 112)),
    ((28, 28), (56, 56)), ((480, 640), (476, 644)), ((768, 1024), (756, 1036)), ((1080, 1920), (1092, 1932)),
    ((4000, 3000), (4004, 2996)), ((8000, 6000), (4116, 3080)), ((5000, 5000), (3556, 3556)),
]
SPEC_VECTORS_1280 = [((1080, 1920), (728, 1316)), ((4000, 3000), (1148, 840))]
# A side under 14 px: the two smart_resize variants disagree (model.md §3.3).
EXTRA_INPUTS = [(10, 1000), (1000, 10), (61, 97), (70, 90), (24, 20), (500, 30), (484, 1024), (1, 1), (14, 14),
                (15, 2900), (27, 29)]


LIMITS = [("default", DEFAULT_MIN_PIXELS, DEFAULT_MAX_PIXELS), ("max1280", DEFAULT_MIN_PIXELS, CAP_1280_MAX_PIXELS),
          ("tiny", TINY_MIN_PIXELS, TINY_MAX_PIXELS)]   # "tiny" = the limits of the tiny checkpoints' preprocessor


def _processor(min_pixels, max_pixels):
    return Qwen2VLImageProcessorPil(min_pixels=min_pixels, max_pixels=max_pixels, patch_size=14,
                                    temporal_patch_size=2, merge_size=2, image_mean=CLIP_MEAN, image_std=CLIP_STD)


def _smart_resize_vectors():
    rows = []
    for limits_name, mn, mx, vectors in (("default", DEFAULT_MIN_PIXELS, DEFAULT_MAX_PIXELS, SPEC_VECTORS_DEFAULT),
                                         ("max1280", DEFAULT_MIN_PIXELS, CAP_1280_MAX_PIXELS, SPEC_VECTORS_1280)):
        for (h, w), expected in vectors:
            got = smart_resize_hf(h, w, 28, mn, mx)
            if got != expected:
                raise RuntimeError(f"smart_resize({h},{w}) = {got}, model.md says {expected}")
            rows.append(_vector_row(h, w, mn, mx))
        for h, w in EXTRA_INPUTS:
            rows.append(_vector_row(h, w, mn, mx))
    for h, w in EXTRA_INPUTS + [(300, 451)]:
        rows.append(_vector_row(h, w, TINY_MIN_PIXELS, TINY_MAX_PIXELS))
    return rows


def _vector_row(h, w, mn, mx):
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize as hf_smart_resize
    hf = smart_resize_hf(h, w, 28, mn, mx)
    if hf != tuple(hf_smart_resize(h, w, 28, mn, mx)):
        raise RuntimeError(f"own smart_resize differs from transformers for {(h, w)}")
    return {"height": h, "width": w, "min_pixels": mn, "max_pixels": mx, "hf": list(hf),
            "qwen_vl_utils": list(smart_resize_qwen_vl_utils(h, w, 28, mn, mx))}


def build_preprocess_json(golden_dir):
    images = []
    for name, _, _, _ in IMAGE_SPECS:
        rgb = load_rgb(os.path.join(golden_dir, "images", name))
        entry = {"image": f"images/{name}", "size_wh": [rgb.width, rgb.height],
                 "rgb_sha256": sha256_u8(np.asarray(rgb)), "limits": {}}
        for limits_name, mn, mx in LIMITS:
            resized = pre_resize(rgb, mn, mx)
            proc = _processor(mn, mx)
            out = proc(images=[resized], return_tensors="np")
            direct = proc(images=[rgb], return_tensors="np")
            pv = out["pixel_values"]
            if not np.array_equal(pv, own_pixel_values(resized)):
                raise RuntimeError(f"{name}/{limits_name}: pixel_values differ from the model.md formula")
            if not np.array_equal(pv, direct["pixel_values"]):
                raise RuntimeError(f"{name}/{limits_name}: pre-resized and direct pixel_values differ")
            entry["limits"][limits_name] = {
                "min_pixels": mn, "max_pixels": mx, "resized_hw": [resized.height, resized.width],
                "image_grid_thw": out["image_grid_thw"][0].tolist(), "resized_rgb_sha256": sha256_u8(np.asarray(resized)),
                "pixel_values_shape": list(pv.shape), "pixel_values_sha256": sha256_f32(pv),
                "pixel_values_first8": f32_list(pv.ravel()[:8]),
            }
        images.append(entry)
    doc = {"images": images, "smart_resize": _smart_resize_vectors()}
    write_json(os.path.join(golden_dir, "preprocess.json"), doc)
    return doc
