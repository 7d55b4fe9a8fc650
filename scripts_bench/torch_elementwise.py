"""PyTorch's equivalents of vreflect_cuda_bench's memory-bound kernels (--kernels elementwise; native/cuda/bench/
bench_elementwise.cc): the same kernel names, shape keys and "bytes" (what our kernel must move, so "gbs" lines up
with ours; PyTorch's eager ops may move more), timed by torch_kernels.py. impl "torch-eager" (or "torch-fused" for
AdamW's fused step). Imported by torch_kernels.py; torch is imported only when a case runs.
"""

TOKENS, HIDDEN, FFN, VOCAB = 4096, 3584, 18944, 152064
IMAGE_TOKENS, MERGER_HIDDEN, CE_ROWS = 1024, 5120, 1024
HEADS_Q, HEADS_KV, HEAD_DIM = 28, 4, 128
QKV_ROW, KV_ROW = (HEADS_Q + 2 * HEADS_KV) * HEAD_DIM, HEADS_KV * HEAD_DIM

NAMES = ["swiglu_fwd", "swiglu_bwd", "rmsnorm_fwd", "rmsnorm_bwd", "rmsnorm_to_bf16", "rope_fwd", "rope_bwd",
         "convert_f32_bf16", "convert_bf16_f32", "cross_entropy", "gelu_fwd", "gelu_bwd", "scatter_rows",
         "kv_append", "adamw"]


def plan(kernels, quick):
    """The cases of bench_elementwise.cc's plan_elementwise, same order, shape keys and bytes (one impl here)."""
    out = []
    for k in NAMES:
        if k not in kernels:
            continue
        cs = []
        if k in ("swiglu_fwd", "swiglu_bwd", "gelu_fwd", "gelu_bwd"):
            rows, cols = (TOKENS, FFN) if k.startswith("swiglu") else (IMAGE_TOKENS, MERGER_HIDDEN)
            moved = {"swiglu_fwd": 3, "swiglu_bwd": 5, "gelu_fwd": 2, "gelu_bwd": 3}[k]
            cs.append(({"rows": rows, "cols": cols}, moved * rows * cols * 2, "bf16"))
        elif k in ("rmsnorm_fwd", "rmsnorm_bwd"):
            moved = 2 if k == "rmsnorm_fwd" else 4
            cs.append(({"rows": TOKENS, "cols": HIDDEN}, moved * TOKENS * HIDDEN * 4, "f32"))
        elif k == "rmsnorm_to_bf16":
            for n in (TOKENS, 1):
                cs.append(({"rows": n, "cols": HIDDEN}, n * HIDDEN * 6, "bf16"))
        elif k in ("rope_fwd", "rope_bwd"):
            heads = HEADS_Q + HEADS_KV
            for t in (TOKENS, 1):
                cs.append(({"tokens": t, "heads": heads, "head_dim": HEAD_DIM, "row_stride": QKV_ROW},
                           t * heads * HEAD_DIM * 2 * 2 + t * HEAD_DIM * 2 * 4, "bf16"))
        elif k in ("convert_f32_bf16", "convert_bf16_f32"):
            if k == "convert_f32_bf16":
                cs.append(({"rows": TOKENS, "cols": FFN}, TOKENS * FFN * 6, "bf16"))
            cs.append(({"rows": TOKENS, "cols": HIDDEN}, TOKENS * HIDDEN * 6, "bf16"))
        elif k == "cross_entropy":
            cs.append(({"rows": CE_ROWS, "vocab": VOCAB}, 3 * CE_ROWS * VOCAB * 2, "bf16"))
        elif k == "scatter_rows":
            cs.append(({"rows": IMAGE_TOKENS, "tokens": TOKENS, "cols": HIDDEN}, 2 * IMAGE_TOKENS * HIDDEN * 2, "bf16"))
        elif k == "kv_append":
            for t in (TOKENS, 1):
                cs.append(({"tokens": t, "row": KV_ROW, "src_stride": QKV_ROW}, 2 * 2 * t * KV_ROW * 2, "bf16"))
        elif k == "adamw":
            n = HIDDEN * FFN
            cs.append(({"params": n}, n * (6 * 4 + 2 * 2), "f32"))
        if quick:
            cs = cs[:1]
        for shape, moved, dtype in cs:
            out.append({"kernel": k, "shape": shape, "impl": "torch-fused" if k == "adamw" else "torch-eager",
                        "flop": 0.0, "bytes": float(moved), "dtype": dtype})
    return out


def run(runner, case):
    """(ms, reps, extra) of one case on runner (torch_kernels.Runner: .torch, .dev, .rand, .time)."""
    torch = runner.torch
    import torch.nn.functional as F

    k, s = case["kernel"], case["shape"]
    f32 = lambda *shape: runner.rand(*shape).float()  # noqa: E731
    if k in ("swiglu_fwd", "swiglu_bwd", "gelu_fwd", "gelu_bwd"):
        bwd = k.endswith("bwd")
        n = (s["rows"], s["cols"])
        if k.startswith("swiglu"):
            g, u = runner.rand(*n, grad=bwd), runner.rand(*n, grad=bwd)
            fwd, inputs = (lambda: F.silu(g) * u), (g, u)
        else:
            z = runner.rand(*n, grad=bwd)
            fwd, inputs = (lambda: F.gelu(z)), (z,)
        if not bwd:
            return (*runner.time(fwd), {})
        out, dout = fwd(), runner.rand(*n)
        return (*runner.time(lambda: torch.autograd.grad(out, inputs, dout, retain_graph=True)), {})
    if k.startswith("rmsnorm"):
        N, C = s["rows"], s["cols"]
        x, w = f32(N, C).requires_grad_(k == "rmsnorm_bwd"), f32(C)

        def norm():
            if hasattr(F, "rms_norm"):
                return F.rms_norm(x, (C,), w, 1e-6)
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * w

        if k == "rmsnorm_fwd":
            return (*runner.time(norm), {})
        if k == "rmsnorm_to_bf16":
            return (*runner.time(lambda: norm().to(torch.bfloat16)), {})
        out, dout = norm(), f32(N, C)
        return (*runner.time(lambda: torch.autograd.grad(out, (x,), dout, retain_graph=True)), {})
    if k in ("rope_fwd", "rope_bwd"):
        T, H, D, stride = s["tokens"], s["heads"], s["head_dim"], s["row_stride"]
        qkv = runner.rand(T, stride)
        cos, sin = f32(T, 1, D), f32(T, 1, D)
        sign = 1.0 if k == "rope_fwd" else -1.0

        def rope():  # rotate-half on q|k (the first H heads of the row), written back in place
            x = qkv[:, : H * D].view(T, H, D)
            rot = torch.cat((-x[..., D // 2:], x[..., : D // 2]), dim=-1)
            x.copy_((x.float() * cos + sign * rot.float() * sin).to(x.dtype))

        return (*runner.time(rope), {})
    if k in ("convert_f32_bf16", "convert_bf16_f32"):
        n = (s["rows"], s["cols"])
        src = f32(*n) if k == "convert_f32_bf16" else runner.rand(*n)
        dst = torch.empty(n, device=runner.dev, dtype=torch.bfloat16 if k == "convert_f32_bf16" else torch.float32)
        return (*runner.time(lambda: dst.copy_(src)), {})
    if k == "cross_entropy":
        N, V = s["rows"], s["vocab"]
        logits = runner.rand(N, V, grad=True)
        tgt = torch.arange(N, device=runner.dev) * 7919 % V

        def step():
            loss = F.cross_entropy(logits, tgt)
            return torch.autograd.grad(loss, (logits,))

        return (*runner.time(step), {})
    if k == "scatter_rows":
        n, T, D = s["rows"], s["tokens"], s["cols"]
        x, src = runner.rand(T, D), runner.rand(n, D)
        rows = torch.arange(16, 16 + n, device=runner.dev)
        return (*runner.time(lambda: x.index_copy_(0, rows, src)), {})
    if k == "kv_append":
        T, row, stride = s["tokens"], s["row"], s["src_stride"]
        cap = max(T, 4096)
        kc, vc, src = runner.rand(cap, row), runner.rand(cap, row), runner.rand(T, stride)
        q = HEADS_Q * HEAD_DIM

        def append():
            kc[cap - T:].copy_(src[:, q:q + row])
            vc[cap - T:].copy_(src[:, q + row:q + 2 * row])

        return (*runner.time(append), {})
    if k == "adamw":
        n = s["params"]
        p = torch.nn.Parameter(f32(n))
        p.grad = f32(n)  # torch's AdamW wants the gradient in the parameter's dtype (4 more bytes than ours)
        opt = torch.optim.AdamW([p], lr=1e-5, fused=True)
        return (*runner.time(opt.step), {})
    raise ValueError(f"unknown elementwise kernel {k}")
