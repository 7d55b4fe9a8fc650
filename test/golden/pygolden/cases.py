"""The golden decoding cases: builds inputs with the HF processor, runs the fp32 and bf16 references, the plain
generate() cross-check and the no-cache recomputation, and writes cases/<case>.json + .safetensors."""
import json
import os
import re

import jinja2
import numpy as np
import torch
from safetensors.torch import save_file
from transformers import AutoImageProcessor, AutoTokenizer, Qwen2_5_VLProcessor
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

from .constants import CHAT_TEMPLATE, TINY_MAX_PIXELS, TINY_MIN_PIXELS
from .images import load_rgb, own_pixel_values, pre_resize
from .reference import greedy_decode, own_rope_index, prompt_forward, recompute_without_cache
from .util import f32_list, sha256_f32, sha256_u8, write_json

P_BRIEF = "What is shown here? Answer briefly."
P_DESCRIBE = "Describe the picture in one sentence."
P_OPTIONS = "Which color is the sky?\nA. red\nB. blue\nAnswer with the option's letter."
P_COUNT = "How many shapes are there? Count them."
P_CAT = "Is the cat on the left or the right?"
P_READ = "Read the text in the image."
P_SAME = "Do the two pictures show the same thing?\nA. yes\nB. no\nAnswer with the option's letter."
P_WHICH = "Which picture is the brightest? Count them."

# name, model, image (or a tuple of images, in prompt order), prompt, assistant_prefix, repetition_penalty,
# latent_steps, max_new_tokens
CASES = [
    # No assistant prefix: latent mode starts only when the model itself emits <|lvr_start|>.
    ("flat_latent8_wide_noprefix_rep100", "tiny-flat", "wide_1024x484.jpg", P_BRIEF, "", 1.0, 8, 24),
    ("flat_plain_odd_rep105", "tiny-flat", "odd_97x61.png", P_OPTIONS, "", 1.05, 0, 20),
    ("nested_plain_gray_rep105", "tiny-nested", "gray_80x120.png", P_DESCRIBE, "", 1.05, 0, 20),
    ("nested_plain_tall_rep100", "tiny-nested", "tall_30x500.png", P_COUNT, "", 1.0, 0, 16),
    ("flat_latent8_small_rep105", "tiny-flat", "small_20x24.png", P_CAT, "<|lvr_start|>", 1.05, 8, 20),
    ("flat_latent8_rgba_rep100", "tiny-flat", "rgba_90x70.png", P_READ, "<|lvr_start|>", 1.0, 8, 20),
    ("nested_latent8_odd_rep105", "tiny-nested", "odd_97x61.png", P_BRIEF, "<|lvr_start|>", 1.05, 8, 24),
    ("nested_latent4_rgba_rep105", "tiny-nested", "rgba_90x70.png", P_CAT, "<|lvr_start|>", 1.05, 4, 16),
    ("nested_latent8_small_rep100", "tiny-nested", "small_20x24.png", P_OPTIONS, "<|lvr_start|>", 1.0, 8, 20),
    ("flat_plain_gray_rep105", "tiny-flat", "gray_80x120.png", P_READ, "", 1.05, 0, 24),
    # Token limit below the latent quota: generation must run past max_new_tokens until latent mode ends.
    ("flat_latent8_tall_limit6", "tiny-flat", "tall_30x500.png", P_DESCRIBE, "<|lvr_start|>", 1.05, 8, 6),
    # Several images in one prompt (BLINK sends up to four): each image its own ViT sequence and windows, M-RoPE
    # positions continuing after each image, features scattered in prompt order.
    ("flat_plain_2img_rep105", "tiny-flat", ("odd_97x61.png", "wide_1024x484.jpg"), P_SAME, "", 1.05, 0, 16),
    ("nested_latent8_3img_rep100", "tiny-nested", ("tall_30x500.png", "rgba_90x70.png", "gray_80x120.png"), P_WHICH,
     "<|lvr_start|>", 1.0, 8, 20),
]


class ImageOnlyProcessor(Qwen2_5_VLProcessor):
    """Qwen2_5_VLProcessor without its video processor: 5.18's AutoProcessor insists on the torchvision-only
    Qwen2VLVideoProcessor, and installing torchvision would also switch the image processor away from Pillow."""

    def check_argument_for_proper_class(self, argument_name, argument):
        if argument_name == "video_processor" and argument is None:
            return None
        return super().check_argument_for_proper_class(argument_name, argument)


def load_processor(model_dir):
    image_processor = AutoImageProcessor.from_pretrained(model_dir)
    if not isinstance(image_processor, Qwen2VLImageProcessorPil):
        raise RuntimeError(f"expected the Pillow image processor, got {type(image_processor).__name__}")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    with open(os.path.join(model_dir, "chat_template.json"), encoding="utf-8") as f:
        template = json.load(f)["chat_template"]
    if tokenizer.chat_template != template:
        raise RuntimeError("tokenizer_config.json and chat_template.json carry different templates")
    return ImageOnlyProcessor(image_processor=image_processor, tokenizer=tokenizer, video_processor=None,
                              chat_template=template)


def render_prompt(processor, prompt, assistant_prefix, n_images=1):
    content = [{"type": "image"} for _ in range(n_images)] + [{"type": "text", "text": prompt}]
    messages = [{"role": "user", "content": content}]
    via_hf = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    own = jinja2.Environment(trim_blocks=True, lstrip_blocks=True).from_string(CHAT_TEMPLATE).render(messages=messages, add_generation_prompt=True)
    if via_hf != own:
        raise RuntimeError(f"chat template rendering differs:\n{via_hf!r}\n{own!r}")
    return via_hf + assistant_prefix


def build_inputs(processor, image_paths, text):
    names = ", ".join(os.path.basename(p) for p in image_paths)
    rgbs = [load_rgb(p) for p in image_paths]
    resized = [pre_resize(rgb, TINY_MIN_PIXELS, TINY_MAX_PIXELS) for rgb in rgbs]
    inputs = processor(images=resized, text=[text], return_tensors="pt")
    direct = processor(images=rgbs, text=[text], return_tensors="pt")
    if not torch.equal(inputs["pixel_values"], direct["pixel_values"]):
        raise RuntimeError(f"{names}: pre-resized pixel_values differ from the processor on the RGB image")
    if not torch.equal(inputs["input_ids"], direct["input_ids"]):
        raise RuntimeError(f"{names}: input_ids differ between pre-resized and direct processing")
    own = np.concatenate([own_pixel_values(r) for r in resized])
    if not np.array_equal(own, inputs["pixel_values"].numpy()):
        raise RuntimeError(f"{names}: pixel_values differ from the model.md §3.5-3.6 formula")
    return inputs, resized


def collapse_output(text):
    """method.md §12.5: cut after the first <|im_end|> (kept), collapse runs of <|lvr_start|>."""
    cut = text.find("<|im_end|>")
    if cut >= 0:
        text = text[: cut + len("<|im_end|>")]
    return re.sub(r"(<\|lvr_start\|>)+", "<|lvr_start|>", text)


def run_case(spec, golden_dir, models, sources, raw_tok, ids):
    name, model_name, image, prompt, prefix, penalty, latent_steps, max_new = spec
    image_names = list(image) if isinstance(image, tuple) else [image]
    model_dir = os.path.join(golden_dir, "models", model_name)
    processor = load_processor(model_dir)
    text = render_prompt(processor, prompt, prefix, len(image_names))
    inputs, resized = build_inputs(processor, [os.path.join(golden_dir, "images", i) for i in image_names], text)
    input_ids = inputs["input_ids"][0].tolist()
    grids = inputs["image_grid_thw"].tolist()
    if len(grids) != len(image_names):
        raise RuntimeError(f"{name}: {len(grids)} grids for {len(image_names)} images")

    # The tokenizer files alone must give the same ids as the processor (pads expanded in the text, image by image).
    counts = [(g[0] * g[1] * g[2]) // 4 for g in grids]
    n_img = sum(counts)
    parts = text.split("<|image_pad|>")
    if len(parts) != len(counts) + 1:
        raise RuntimeError(f"{name}: {len(parts) - 1} image pads in the prompt for {len(counts)} images")
    expanded = parts[0] + "".join("<|image_pad|>" * n + rest for n, rest in zip(counts, parts[1:]))
    if raw_tok.encode(expanded, add_special_tokens=False).ids != input_ids:
        raise RuntimeError(f"{name}: raw tokenizers ids differ from the processor's")
    mm = inputs["mm_token_type_ids"][0].tolist()
    if mm != [1 if t == ids["image_pad"] else 0 for t in input_ids]:
        raise RuntimeError(f"{name}: unexpected mm_token_type_ids")

    fp32, bf16 = models[model_name]
    hf_pos, hf_delta = fp32.model.get_rope_index(inputs["input_ids"], inputs["mm_token_type_ids"],
                                                 image_grid_thw=inputs["image_grid_thw"],
                                                 attention_mask=inputs["attention_mask"])
    own_pos, own_delta = own_rope_index(input_ids, grids, ids["image_pad"], ids["vision_start"])
    if hf_pos[:, 0, :].tolist() != own_pos or int(hf_delta) != own_delta:
        raise RuntimeError(f"{name}: M-RoPE positions differ from the own implementation")
    position_ids = hf_pos

    logits, hidden, feats, embeds = prompt_forward(fp32, inputs, position_ids)
    pad_rows = inputs["input_ids"][0] == ids["image_pad"]
    if not torch.equal(embeds[pad_rows], feats):
        raise RuntimeError(f"{name}: vision features are not the scattered image-pad rows")
    logits_bf16, _, feats_bf16, _ = prompt_forward(bf16, inputs, position_ids)
    # The directory transformers reloaded must reproduce the in-memory model it was written from.
    src_logits = prompt_forward(sources[model_name], inputs, position_ids)[0]
    if not torch.equal(src_logits, logits):
        raise RuntimeError(f"{name}: reloaded model's logits differ from the source model's")

    rec = greedy_decode(fp32, inputs, position_ids, own_delta, penalty=penalty, max_new_tokens=max_new,
                        im_end_id=ids["im_end"], lvr_start_id=ids["lvr_start"], latent_steps=latent_steps)
    step_logits = torch.stack(rec["step_logits"])
    if (step_logits[0] - logits[-1]).abs().max() > 1e-5:
        raise RuntimeError(f"{name}: prefill logits differ between cached and plain forward")
    full = recompute_without_cache(fp32, embeds, position_ids, rec, own_delta)
    cache_err = float((full - step_logits).abs().max())
    if cache_err > 1e-4:
        raise RuntimeError(f"{name}: KV-cache decode differs from the no-cache recomputation ({cache_err})")
    if latent_steps == 0:
        with torch.no_grad():
            gen = fp32.generate(**inputs, do_sample=False, repetition_penalty=penalty, eos_token_id=ids["im_end"],
                                max_new_tokens=max_new)
        hf_ids = gen[0, len(input_ids):].tolist()
        if hf_ids != rec["generated"]:
            raise RuntimeError(f"{name}: generate() gave {hf_ids}, reference loop {rec['generated']}")

    raw_text = processor.tokenizer.decode(rec["generated"], skip_special_tokens=False)
    if raw_text != raw_tok.decode(rec["generated"], skip_special_tokens=False):
        raise RuntimeError(f"{name}: HF and raw tokenizers decode differ")
    pv = inputs["pixel_values"].numpy()
    bf16_err = float((logits_bf16 - logits).abs().max())
    case = {
        "case": name,
        "model": model_name,
        "model_dir": f"models/{model_name}",
        # one image: "image" and its grid; several: "images" and "image_grid_thws", in prompt order
        **({"image": f"images/{image_names[0]}"} if len(image_names) == 1 else {"images": [f"images/{i}" for i in image_names]}),
        "prompt": prompt,
        "assistant_prefix": prefix,
        "repetition_penalty": penalty,
        "decoding": "latent" if latent_steps > 0 else "plain",
        "latent_steps": latent_steps,
        "max_new_tokens": max_new,
        "eos_token_id": ids["im_end"],
        "lvr_start_id": ids["lvr_start"],
        "prompt_text": text,
        **({"resized_hw": [resized[0].height, resized[0].width], "resized_rgb_sha256": sha256_u8(np.asarray(resized[0])),
            "image_grid_thw": grids[0]} if len(image_names) == 1 else
           {"resized_hw": [[r.height, r.width] for r in resized], "resized_rgb_sha256": [sha256_u8(np.asarray(r)) for r in resized],
            "image_grid_thws": grids}),
        "num_image_tokens": n_img,
        "prompt_length": len(input_ids),
        "input_ids": input_ids,
        "position_ids": own_pos,
        "rope_delta": own_delta,
        "pixel_values": {"sha256": sha256_f32(pv), "shape": list(pv.shape), "first8": f32_list(pv.ravel()[:8])},
        "generated_ids": rec["generated"],
        "stop_reason": rec["stop_reason"],
        "decode_positions": rec["step_positions"],
        "step_input_is_hidden": rec["step_input_is_hidden"],
        "step_top2_margins": rec["margins"],
        "min_top2_margin": min(rec["margins"]),
        "output_text_raw": raw_text,
        "output_text": collapse_output(raw_text),
        "checks": {"kv_cache_vs_full_max_abs": cache_err, "bf16_ref_logits_max_abs_vs_fp32": bf16_err},
    }
    tensors = {
        "vision_features": feats.contiguous(),
        "logits": logits.contiguous(),
        "last_hidden": hidden.contiguous(),
        "step_logits": step_logits.contiguous(),
        "step_hidden": torch.stack(rec["step_hidden"]).contiguous(),
        "logits_bf16_ref": logits_bf16.contiguous(),
        "vision_features_bf16_ref": feats_bf16.contiguous(),
    }
    out = os.path.join(golden_dir, "cases")
    os.makedirs(out, exist_ok=True)
    write_json(os.path.join(out, f"{name}.json"), case)
    save_file(tensors, os.path.join(out, f"{name}.safetensors"), metadata={"format": "pt"})
    return case
