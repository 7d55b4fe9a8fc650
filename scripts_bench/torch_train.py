#!/usr/bin/env python3
"""PyTorch + transformers side of `vreflect bench train`: times V-Reflection stage-1 optimizer steps (method.md
§7-§8) the way a PyTorch user writes them, on the benchmark checkpoint and the micro-batch `vreflect bench train`
wrote (batch.json + pixels.f32), and prints ONE JSON line on stdout. Progress and warnings go to stderr.

  python scripts_bench/torch_train.py --model DIR --batch DIR/batch.json --threads 2 --steps 3 --warmup 1 \
      [--grad-accum 8] [--checkpointing] [--device cpu|cuda]

The step, eager mode:
  * Qwen2_5_VLForConditionalGeneration.from_pretrained(DIR) with fp32 weights; the vision tower + merger frozen,
    cast to bf16 (no master copy needed) and run under no_grad; everything else trained: fp32 master weights,
    compute under torch.autocast("cpu", bfloat16) (mixed precision as HF Trainer --bf16 runs it on CPU);
  * a BCM head (method.md §6.1): 8 learned queries, nn.MultiheadAttention(D, 8 heads, bias, batch_first) over each
    box's visual tokens (key padding mask), LayerNorm(eps 1e-6); its detached output fills the <|lvr|> slots;
  * the decoder (sdpa attention, causal) on the embeddings with the image features and latents scattered in,
    with the M-RoPE positions from the batch file; lm_head only on rows that have a target (as our fused CE);
  * loss = CE + 0.5 x symmetric decoupled MSE between h[slot - 1] and the latents (method.md §8.3);
  * (loss / N).backward() for each of the --grad-accum N micro-batches (the same one N times; upstream's recipe
    accumulates 8 per optimizer step), then clip_grad_norm_(1.0), torch.optim.AdamW (betas 0.9/0.999, eps 1e-8,
    weight decay 0.1 on tensors with >= 2 dims, fused CPU kernel by default), zero_grad;
  * --checkpointing: transformers' gradient checkpointing of the decoder layers (upstream trains with it on).
  * --device cuda: the model, the BCM, the batch on the GPU, autocast("cuda", bfloat16), torch.cuda.synchronize()
    before every timestamp; the JSON then also holds the GPU's name and torch.cuda.max_memory_allocated().
"""
import argparse
import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from proc_stats import cpu_seconds, eprint, peak_rss_bytes, rss_bytes  # noqa: E402


def make_bcm(torch, D, K):
    nn = torch.nn

    class BoxGuidedCompression(nn.Module):
        def __init__(self):
            super().__init__()
            self.queries = nn.Parameter(torch.randn(1, K, D) * 0.02)
            self.cross_attn = nn.MultiheadAttention(D, max(1, min(8, D // 64)), batch_first=True)
            self.output_norm = nn.LayerNorm(D, eps=1e-6)

        def forward(self, X, M):
            q = self.queries.expand(X.shape[0], -1, -1)
            o, _ = self.cross_attn(q, X, X, key_padding_mask=M, need_weights=False)
            return self.output_norm(o)

    return BoxGuidedCompression()


def cmd_train(a):
    import torch
    if a.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"torch {torch.__version__} has no usable CUDA device")
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if a.device == "cuda" else (lambda: None)
    import torch.nn.functional as F
    import transformers
    from transformers import Qwen2_5_VLForConditionalGeneration

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    with open(a.batch) as f:
        b = json.load(f)
    n, L = b["samples"], b["seq_len"]
    ids = torch.tensor(b["input_ids"], dtype=torch.long).view(n, L)
    targets = torch.tensor(b["targets"], dtype=torch.long).view(n, L)
    positions = torch.tensor(b["positions"], dtype=torch.long).view(3, n, L)
    grid = torch.tensor(b["image_grid_thw"], dtype=torch.long)
    with open(b["pixel_file"], "rb") as f:
        pixels = torch.frombuffer(bytearray(f.read()), dtype=torch.float32).view(b["pixel_rows"], b["patch_dim"])
    ids, targets, positions, grid, pixels = (x.to(dev) for x in (ids, targets, positions, grid, pixels))

    t0 = time.perf_counter()
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(a.model, dtype=torch.float32, attn_implementation="sdpa")
    model.to(dev)
    visual = model.model.visual
    visual.requires_grad_(False)
    visual.to(torch.bfloat16)
    visual.eval()
    lm = model.model.language_model
    lm.train()
    if a.checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True})
    D = lm.config.hidden_size
    K = len(b["lvr_slots"][0]) if b["lvr_slots"] else 8
    bcm = make_bcm(torch, D, K).to(dev).train()
    trainable = [p for p in list(lm.parameters()) + list(model.lm_head.parameters()) + list(bcm.parameters()) if p.requires_grad]
    decay = [p for p in trainable if p.ndim >= 2]
    no_decay = [p for p in trainable if p.ndim < 2]
    opt_kwargs = {"fused": True} if a.adamw == "fused" else {"foreach": a.adamw == "foreach"}
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.999), eps=1e-8, **opt_kwargs)
    sync()
    load_s = time.perf_counter() - t0
    rss_after_load = rss_bytes()

    image_mask = (ids == b["image_token_id"]).unsqueeze(-1)
    # Visual rows of each sample's first image (one image per sample here: rows in sample order).
    tokens_per_image = (grid.prod(-1) // (visual.spatial_merge_size ** 2)).tolist()
    first_row = [0]
    for t in tokens_per_image[:-1]:
        first_row.append(first_row[-1] + t)
    boxes = b["boxes"]
    nmax = max(len(x["tokens"]) for x in boxes)
    box_rows = [torch.tensor([first_row[x["sample"]] + i for i in x["tokens"]], dtype=torch.long, device=dev) for x in boxes]
    pad_mask = torch.ones(len(boxes), nmax, dtype=torch.bool)
    for j, r in enumerate(box_rows):
        pad_mask[j, : len(r)] = False
    pad_mask = pad_mask.to(dev)
    slot_row = torch.tensor([x["sample"] for x in boxes for _ in range(K)], dtype=torch.long, device=dev)
    slot_col = torch.tensor([p for s in b["lvr_slots"] for p in s], dtype=torch.long, device=dev)
    sel = targets != -100

    def micro_batch():
        """forward + (loss / N).backward() of one micro-batch; returns its losses and vision-tower seconds"""
        sync()
        t_a = time.perf_counter()
        with torch.no_grad():
            feats = torch.cat(model.model.get_image_features(pixels, grid).pooler_output, dim=0)  # [V, D] bf16
        sync()
        t_v = time.perf_counter()
        with torch.autocast(a.device, dtype=torch.bfloat16):
            emb = lm.embed_tokens(ids)
            emb = emb.masked_scatter(image_mask, feats.to(emb.dtype))
            X = torch.zeros(len(boxes), nmax, D, dtype=feats.dtype, device=dev)
            for j, r in enumerate(box_rows):
                X[j, : len(r)] = feats[r]
            Z = bcm(X, pad_mask)  # [boxes, K, D]
            emb = emb.index_put((slot_row, slot_col), Z.detach().reshape(-1, D).to(emb.dtype))
            h = lm(inputs_embeds=emb, position_ids=positions).last_hidden_state
            logits = model.lm_head(h[sel])
        ce = F.cross_entropy(logits.float(), targets[sel])
        Hm1 = h[slot_row, slot_col - 1].float().view(len(boxes), K, D)
        Zf = Z.float()
        align = (F.mse_loss(Hm1.detach(), Zf) + F.mse_loss(Hm1, Zf.detach())) / 2
        loss = ce + 0.5 * align
        (loss / a.grad_accum).backward()
        return loss.item(), ce.item(), align.item(), t_v - t_a

    def step():
        sync()
        r_a = resource.getrusage(resource.RUSAGE_SELF)
        t_a = time.perf_counter()
        micro = [micro_batch() for _ in range(a.grad_accum)]
        sync()
        t_b = time.perf_counter()
        gn = torch.nn.utils.clip_grad_norm_(trainable, a.max_grad_norm)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync()
        t_c = time.perf_counter()
        r_c = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "step_ms": (t_c - t_a) * 1000,
            "fwd_bwd_ms": (t_b - t_a) * 1000,
            "optimizer_ms": (t_c - t_b) * 1000,
            "vision_ms": sum(m[3] for m in micro) * 1000,
            "user_s": r_c.ru_utime - r_a.ru_utime,
            "sys_s": r_c.ru_stime - r_a.ru_stime,
            "loss": sum(m[0] for m in micro) / len(micro),  # the micro-batches' mean, as train-stage1 logs it
            "loss_ce": sum(m[1] for m in micro) / len(micro),
            "loss_align": sum(m[2] for m in micro) / len(micro),
            "grad_norm": gn.item(),
        }

    label = f"torch bf16{' ckpt' if a.checkpointing else ''}"
    micro_batches = f"{a.grad_accum} micro-batch{'' if a.grad_accum == 1 else 'es'}"
    for i in range(a.warmup):
        s = step()
        eprint(f"{label}: warm-up {i + 1}/{a.warmup}: {s['step_ms']:.0f} ms ({micro_batches} + AdamW), loss {s['loss']:.3f}")
    steps = []
    for i in range(a.steps):
        s = step()
        eprint(f"{label}: step {i + 1}/{a.steps}: {s['step_ms']:.0f} ms (fwd+bwd {s['fwd_bwd_ms']:.0f} over {micro_batches}, "
               f"AdamW {s['optimizer_ms']:.0f}), loss {s['loss']:.3f} (ce {s['loss_ce']:.3f}, align {s['loss_align']:.4f}), "
               f"CPU user {s['user_s']:.1f} s, kernel {s['sys_s']:.1f} s")
        steps.append(s)
    print(json.dumps({
        "ok": True,
        "device": a.device if a.device == "cpu" else torch.cuda.get_device_name(0),
        **({"peak_device_bytes": torch.cuda.max_memory_allocated()} if a.device == "cuda" else {}),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "threads": torch.get_num_threads(),
        "checkpointing": bool(a.checkpointing),
        "grad_accum": a.grad_accum,
        "adamw": a.adamw,
        "attn": "sdpa",
        "tokens": int(n * L),
        "targets": int(sel.sum()),
        "trainable_params": int(sum(p.numel() for p in trainable)),
        "load_s": load_s,
        "steps": steps,
        "rss_after_load_bytes": rss_after_load,
        "peak_rss_bytes": peak_rss_bytes(),
        "cpu_s": cpu_seconds(),
    }), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--batch", required=True, help="batch.json written by vreflect bench train")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--lr", type=float, default=1e-5)
    p.add_argument("--max-grad-norm", type=float, default=1.0)
    p.add_argument("--grad-accum", type=int, default=8, help="forward+backward passes per optimizer step (upstream: 8)")
    p.add_argument("--checkpointing", action="store_true")
    p.add_argument("--adamw", choices=["fused", "foreach", "for-loop"], default="fused")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    a = p.parse_args()
    if a.grad_accum < 1:
        print(json.dumps({"ok": False, "error": f"--grad-accum must be an integer >= 1, got {a.grad_accum}"}), flush=True)
        sys.exit(2)
    try:
        cmd_train(a)
    except Exception as err:  # noqa: BLE001 - one JSON line the caller can read, whatever failed
        print(json.dumps({"ok": False, "error": f"{type(err).__name__}: {err}".splitlines()[0]}), flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
