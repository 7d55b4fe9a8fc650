#!/usr/bin/env python3
"""PyTorch + transformers side of `vreflect bench infer`: times Qwen2.5-VL inference on a checkpoint directory
the way a transformers user runs it (from_pretrained, the processor, model.generate with a KV cache, sdpa
attention) and prints ONE JSON line on stdout. Progress and warnings go to stderr.

  python scripts_bench/torch_infer.py infer --model DIR --image IMG --prompt TEXT --dtype bf16 --threads 2 \
      --new-tokens 32 --repeats 3
  python scripts_bench/torch_infer.py gemm --threads 2          # torch.matmul bf16/fp32 GFLOP/s
  python scripts_bench/torch_infer.py infer --model DIR --synthetic 256,49 --device cuda --new-tokens 128
      # no processor / image: the prompt of native/cuda/bench/model (vreflect_cuda_model_bench) built directly -
      # <|im_start|> text <|vision_start|> 256 image pads <|vision_end|> text (49 text tokens in all), random
      # normalised pixels on a near-square grid, min_new_tokens = max so random weights decode every token

Timings per repeat (after one warm-up generate):
  prefill_ms          generate() called -> logits of the first new token (ViT included, preprocessing excluded)
  vision_ms           the vision tower's forward inside that prefill
  decode_ms_per_token (time of the last logits - time of the first logits) / decode forwards
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from proc_stats import cpu_seconds, eprint, peak_rss_bytes, rss_bytes  # noqa: E402


def load_processor(model_dir):
    """AutoProcessor; without torchvision transformers 5.x refuses it (the video processor needs torchvision),
    so fall back to the Qwen2.5-VL processor with the image processor and tokenizer only."""
    from transformers import AutoImageProcessor, AutoProcessor, AutoTokenizer, Qwen2_5_VLProcessor
    try:
        return AutoProcessor.from_pretrained(model_dir)
    except Exception as err:  # noqa: BLE001 - any failure: build it by hand
        eprint(f"AutoProcessor failed ({type(err).__name__}); building the image-only processor")

    class ImageOnlyProcessor(Qwen2_5_VLProcessor):
        def check_argument_for_proper_class(self, argument_name, argument):
            if argument_name == "video_processor" and argument is None:
                return None
            return super().check_argument_for_proper_class(argument_name, argument)

    tok = AutoTokenizer.from_pretrained(model_dir)
    return ImageOnlyProcessor(image_processor=AutoImageProcessor.from_pretrained(model_dir), tokenizer=tok,
                              video_processor=None, chat_template=tok.chat_template)


def sync_fn(device):
    """What waits for the device before a timestamp: torch.cuda.synchronize on cuda, nothing on the CPU."""
    if device == "cuda":
        import torch

        return torch.cuda.synchronize
    return lambda: None


class StepClock:
    """A logits processor that only records when each step's logits are ready."""

    def __init__(self, sync=lambda: None):
        self.times = []
        self._sync = sync

    def __call__(self, input_ids, scores):
        self._sync()
        self.times.append(time.perf_counter())
        return scores


class ModuleClock:
    """Wall time of each forward of one module (pre-hook to hook)."""

    def __init__(self, module, sync=lambda: None):
        self.spans = []
        self._t = None
        self._sync = sync
        module.register_forward_pre_hook(self._pre)
        module.register_forward_hook(self._post)

    def _pre(self, *_):
        self._sync()
        self._t = time.perf_counter()

    def _post(self, *_):
        self._sync()
        self.spans.append(time.perf_counter() - self._t)


def synthetic_inputs(config, spec, dtype):
    """The model bench's prompt (native/cuda/bench/model/bench_infer.cc make_prompt) without a processor."""
    import torch
    from transformers import BatchFeature

    try:
        image_tokens, text_tokens = (int(x) for x in spec.split(","))
    except ValueError:
        raise SystemExit(f"--synthetic wants IMAGE_TOKENS,TEXT_TOKENS, got '{spec}'")
    if image_tokens < 1 or text_tokens < 4:
        raise SystemExit(f"--synthetic needs >= 1 image token and >= 4 text tokens, got '{spec}'")
    h = int(image_tokens ** 0.5)
    while h > 1 and image_tokens % h:
        h -= 1
    grid = [1, 2 * h, 2 * (image_tokens // h)]
    gen = torch.Generator().manual_seed(1)
    limit = min(config.image_token_id, config.vision_start_token_id) - 16  # below every special id
    text = lambda n: torch.randint(0, limit, (n,), generator=gen).tolist()  # noqa: E731
    before = (text_tokens - 3) // 2
    im_start = config.vision_start_token_id - 8  # <|im_start|> in Qwen's vocabulary (151644 = 151652 - 8), tiny-flat's
    ids = ([im_start] + text(before) + [config.vision_start_token_id] + [config.image_token_id] * image_tokens
           + [config.vision_start_token_id + 1] + text(text_tokens - 3 - before))
    vc = config.vision_config
    patch_dim = vc.in_chans * vc.temporal_patch_size * vc.patch_size * vc.patch_size
    pixels = torch.rand(grid[1] * grid[2], patch_dim, generator=gen) * 3.9 - 1.8
    return BatchFeature({"input_ids": torch.tensor([ids]), "attention_mask": torch.ones(1, len(ids), dtype=torch.long),
                         "pixel_values": pixels.to(dtype), "image_grid_thw": torch.tensor([grid])})


def cmd_infer(a):
    import torch
    import transformers
    from transformers import LogitsProcessorList, Qwen2_5_VLForConditionalGeneration

    torch.set_num_threads(a.threads)
    if a.device == "cuda" and not torch.cuda.is_available():
        print(json.dumps({"ok": False, "error": f"torch {torch.__version__} has no usable CUDA device"}), flush=True)
        sys.exit(1)
    sync = sync_fn(a.device)
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[a.dtype]
    t0 = time.perf_counter()
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(a.model, dtype=dtype, attn_implementation="sdpa").eval()
    model = model.to(a.device)
    sync()
    load_s = time.perf_counter() - t0
    rss_after_load = rss_bytes()
    if a.synthetic:
        inputs = synthetic_inputs(model.config, a.synthetic, dtype).to(a.device)
    else:
        from PIL import Image

        processor = load_processor(a.model)
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": a.prompt}]}]
        text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        image = Image.open(a.image).convert("RGB")
        inputs = processor(images=[image], text=[text], return_tensors="pt").to(a.device)
    prompt_tokens = int(inputs["input_ids"].shape[1])
    vision = ModuleClock(model.model.visual, sync)

    def run(new_tokens):
        clock = StepClock(sync)
        vision.spans.clear()
        sync()
        start = time.perf_counter()
        with torch.inference_mode():
            # synthetic: random weights must not stop early at <|im_end|>
            more = {"min_new_tokens": new_tokens} if a.synthetic else {}
            out = model.generate(**inputs, do_sample=False, max_new_tokens=new_tokens,
                                 logits_processor=LogitsProcessorList([clock]), **more)
        generated = int(out.shape[1]) - prompt_tokens
        t = clock.times
        return {
            "prefill_ms": (t[0] - start) * 1000,
            "vision_ms": sum(vision.spans) * 1000,
            "decode_ms_per_token": (t[-1] - t[0]) * 1000 / (len(t) - 1) if len(t) > 1 else 0.0,
            "generated": generated,
        }

    for i in range(a.warmup):
        eprint(f"torch {a.dtype}: warm-up {i + 1}/{a.warmup}")
        run(2)
    runs = []
    for i in range(a.repeats):
        r = run(a.new_tokens + 1)  # first token from prefill, then new_tokens decode forwards
        eprint(f"torch {a.dtype}: repeat {i + 1}/{a.repeats}: prefill {r['prefill_ms']:.0f} ms, "
               f"decode {r['decode_ms_per_token']:.1f} ms/token, {r['generated']} tokens")
        runs.append(r)
    print(json.dumps({
        "ok": True,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "dtype": a.dtype,
        "device": a.device if a.device == "cpu" else torch.cuda.get_device_name(0),
        "threads": torch.get_num_threads(),
        "attn": "sdpa",
        "prompt_tokens": prompt_tokens,
        "image_grid_thw": [int(v) for v in inputs["image_grid_thw"][0]],
        "load_s": load_s,
        "runs": runs,
        "rss_after_load_bytes": rss_after_load,
        "peak_rss_bytes": peak_rss_bytes(),
        "cpu_s": cpu_seconds(),
    }), flush=True)


def cmd_gemm(a):
    """Best-of GFLOP/s of torch.matmul for square n x n and for the 7B's largest prefill GEMM shape."""
    import torch

    torch.set_num_threads(a.threads)
    shapes = [(a.n, a.n, a.n), (305, 18944, 3584)]
    out = {"ok": True, "torch": torch.__version__, "threads": torch.get_num_threads(), "results": []}
    for name, dt in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        for m, n, k in shapes:
            x = torch.randn(m, k).to(dt)
            w = torch.randn(n, k).to(dt)
            torch.matmul(x, w.t())  # warm-up (oneDNN primitive creation)
            best = float("inf")
            deadline = time.perf_counter() + a.seconds
            reps = 0
            while reps < 3 or time.perf_counter() < deadline:
                t = time.perf_counter()
                torch.matmul(x, w.t())
                best = min(best, time.perf_counter() - t)
                reps += 1
            out["results"].append({"dtype": name, "m": m, "n": n, "k": k, "best_ms": best * 1000,
                                   "gflops": 2 * m * n * k / best / 1e9})
    out["cpu_s"] = cpu_seconds()
    print(json.dumps(out), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    i = sub.add_parser("infer")
    i.add_argument("--model", required=True)
    i.add_argument("--image")
    i.add_argument("--prompt")
    i.add_argument("--synthetic", help="IMAGE_TOKENS,TEXT_TOKENS: the model bench's prompt, no processor or image")
    i.add_argument("--dtype", choices=["bf16", "fp32"], default="bf16")
    i.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    i.add_argument("--threads", type=int, default=os.cpu_count())
    i.add_argument("--new-tokens", type=int, default=32)
    i.add_argument("--repeats", type=int, default=3)
    i.add_argument("--warmup", type=int, default=1)
    g = sub.add_parser("gemm")
    g.add_argument("--threads", type=int, default=os.cpu_count())
    g.add_argument("--n", type=int, default=2048)
    g.add_argument("--seconds", type=float, default=2.0)
    a = p.parse_args()
    if a.cmd == "infer" and not a.synthetic and not (a.image and a.prompt):
        p.error("infer needs --image and --prompt, or --synthetic")
    try:
        {"infer": cmd_infer, "gemm": cmd_gemm}[a.cmd](a)
    except Exception as err:  # noqa: BLE001 - one JSON line the caller can read, whatever failed
        print(json.dumps({"ok": False, "error": f"{type(err).__name__}: {err}".splitlines()[0]}), flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
