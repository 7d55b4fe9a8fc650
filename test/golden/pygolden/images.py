"""Synthetic test images, the product's RGB rule, smart_resize (HF and qwen-vl-utils variants) and the
qwen-vl-utils style pre-resize."""
import math
import os

import numpy as np
from PIL import Image

# (file name, width, height, mode). Names carry WIDTHxHEIGHT.
IMAGE_SPECS = [
    ("wide_1024x484.jpg", 1024, 484, "RGB"),
    ("odd_97x61.png", 97, 61, "RGB"),
    ("tall_30x500.png", 30, 500, "RGB"),
    ("small_20x24.png", 20, 24, "RGB"),
    ("gray_80x120.png", 80, 120, "L"),
    ("rgba_90x70.png", 90, 70, "RGBA"),
]


def _smooth_noise(w, h, channels, seed):
    """Smooth gradients and blobs plus per-pixel noise, uint8 [h, w, channels]."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    u, v = x / max(w - 1, 1), y / max(h - 1, 1)
    planes = []
    for c in range(channels):
        a, b, f1, f2, ph = rng.uniform(0.2, 1.0), rng.uniform(0.2, 1.0), rng.uniform(1, 4), rng.uniform(1, 4), \
            rng.uniform(0, 6.28)
        base = 0.5 + 0.25 * a * np.sin(2 * np.pi * f1 * u + ph) + 0.25 * b * np.cos(2 * np.pi * f2 * v + c)
        cx, cy = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8)
        blob = 0.3 * np.exp(-(((u - cx) ** 2) + ((v - cy) ** 2)) / 0.02)
        planes.append(255 * (base + blob * (1 if c % 2 == 0 else -1)) + rng.normal(0, 12, size=(h, w)))
    return np.clip(np.rint(np.stack(planes, axis=-1)), 0, 255).astype(np.uint8)


def make_image(name, w, h, mode, seed):
    if mode == "RGB":
        return Image.fromarray(_smooth_noise(w, h, 3, seed), "RGB")
    if mode == "L":
        return Image.fromarray(_smooth_noise(w, h, 1, seed)[:, :, 0], "L")
    if mode == "RGBA":
        rgb = _smooth_noise(w, h, 3, seed)
        # Alpha varies from fully transparent (left) to opaque (right), with a noisy band, so compositing matters.
        ramp = np.linspace(0, 255, w)[None, :].repeat(h, axis=0)
        rng = np.random.default_rng(seed + 1000)
        alpha = np.clip(ramp + rng.normal(0, 20, size=(h, w)), 0, 255)
        alpha[: h // 5, :] = 255
        alpha[h // 5: 2 * h // 5, : w // 3] = 0
        return Image.fromarray(np.dstack([rgb, np.rint(alpha).astype(np.uint8)]), "RGBA")
    raise ValueError(f"unknown mode {mode}")


def write_images(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    for i, (name, w, h, mode) in enumerate(IMAGE_SPECS):
        img = make_image(name, w, h, mode, seed=100 + i)
        path = os.path.join(out_dir, name)
        if name.endswith(".jpg"):
            img.save(path, format="JPEG", quality=90)
        else:
            img.save(path, format="PNG")


def to_rgb(img):
    """The product's RGB rule (qwen-vl-utils `to_rgb`): RGBA pasted onto white using alpha, else convert('RGB')."""
    if img.mode == "RGBA":
        white = Image.new("RGB", img.size, (255, 255, 255))
        white.paste(img, mask=img.split()[3])
        return white
    return img.convert("RGB")


def smart_resize_hf(height, width, factor=28, min_pixels=3136, max_pixels=12845056):
    """transformers' smart_resize (model.md §3.3)."""
    if max(height, width) / min(height, width) > 200:
        raise ValueError("absolute aspect ratio must be smaller than 200")
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def smart_resize_qwen_vl_utils(height, width, factor=28, min_pixels=3136, max_pixels=12845056):
    """qwen-vl-utils' variant: max(factor, ...) guard on the first rounding, none on the floor branch."""
    if max(height, width) / min(height, width) > 200:
        raise ValueError("absolute aspect ratio must be smaller than 200")
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = math.floor(height / beta / factor) * factor
        w_bar = math.floor(width / beta / factor) * factor
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def load_rgb(path):
    with Image.open(path) as img:
        img.load()
        return to_rgb(img)


def pre_resize(rgb, min_pixels, max_pixels):
    """qwen-vl-utils fetch_image: PIL resize((w, h), BICUBIC) to the smart_resize size."""
    h, w = smart_resize_qwen_vl_utils(rgb.height, rgb.width, 28, min_pixels, max_pixels)
    return rgb.resize((w, h), resample=Image.BICUBIC)


def own_pixel_values(resized):
    """model.md §3.5-3.6 written independently of transformers: r = f32(u8 * (1/255)), v = (r - f32(mean)) / f32(std)
    in float32, then rows in 2x2-merge-block order, each row (c, t, y, x) with the frame duplicated (t = 0, 1)."""
    from .constants import CLIP_MEAN, CLIP_STD
    u8 = np.asarray(resized, dtype=np.uint8)
    h, w, _ = u8.shape
    r = (u8.astype(np.float64) * (1 / 255)).astype(np.float32)
    v = (r - np.asarray(CLIP_MEAN, np.float32)) / np.asarray(CLIP_STD, np.float32)      # [h, w, 3] float32
    gh, gw = h // 14, w // 14
    x = v.transpose(2, 0, 1).reshape(3, gh // 2, 2, 14, gw // 2, 2, 14)                # c, bh, mh, i, bw, mw, j
    x = x.transpose(1, 4, 2, 5, 0, 3, 6)                                                  # bh, bw, mh, mw, c, i, j
    x = np.broadcast_to(x[:, :, :, :, :, None], x.shape[:5] + (2, 14, 14))                # add t
    return np.ascontiguousarray(x).reshape(gh * gw, 3 * 2 * 14 * 14)
