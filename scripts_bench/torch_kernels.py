#!/usr/bin/env python3
"""PyTorch side of `vreflect bench kernels`: the shapes of native/cuda/bench (vreflect_cuda_bench) timed with
PyTorch on the GPU, printed in the SAME JSON schema, so the two can be shown side by side:

  {"device": {"name", "cc", "memory_bytes", "driver"}, "date", "torch": {"version", "cuda"},
   "results": [{"kernel", "shape": {...}, "dtype": "bf16", "causal"?, "ms", "tflops", "impl", "reps", "error"?}]}

  attention_fwd / attention_bwd              impl "torch-sdpa": scaled_dot_product_attention, flash backend
                                             (GQA through enable_gqa where the flash kernel takes it, else k/v
                                             expanded to 28 heads before timing; "backend" says which ran)
  cross_attention_fwd / cross_attention_bwd  impl "torch-eager": softmax(q k^T * scale) v in bf16 matmuls with an
                                             fp32 softmax (head dim 448 is beyond the flash kernel)
  gemm                                       impl "torch-matmul": a[M,K] @ w[N,K]^T in bf16
  elementwise (or swiglu_fwd, ..., adamw)    impl "torch-eager" / "torch-fused": the memory-bound kernels'
                                             PyTorch ops on vreflect_cuda_bench's shapes (torch_elementwise.py), with
                                             "gbs" = the bytes OUR kernel moves / time; only when asked for

Times are cudaEvent pairs around one run, median of --reps runs after --warmup. FLOP counts follow
FlashAttention's benchmark (4 S^2 H D forward, halved when causal; backward 2.5x forward); GEMM 2 M N K.

  python3 scripts_bench/torch_kernels.py --json [--quick] [--kernels gemm,...] [--dry-run]
"""
import argparse
import ctypes
import datetime
import json
import math
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_elementwise  # noqa: E402  (the memory-bound kernels' cases)

KERNELS = ["attention_fwd", "attention_bwd", "cross_attention_fwd", "cross_attention_bwd", "gemm"]
HEADS_Q, HEADS_KV, HEAD_DIM = 28, 4, 128
CROSS_QUERIES, CROSS_HEADS, CROSS_HEAD_DIM = 8, 8, 448
GEMM_KN = [(3584, 3584 + 2 * 512), (3584, 3584), (3584, 2 * 18944), (18944, 3584)]  # (K, N): qkv, o, gate_up, down


def eprint(*a):
    print(*a, file=sys.stderr, flush=True)


def int_list(text):
    out = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        mult = 1
        if item[-1] in "kK":
            item, mult = item[:-1], 1024
        try:
            value = int(item) * mult
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of integers")
        if value < 1:
            raise argparse.ArgumentTypeError(f"'{text}': sizes must be positive")
        out.append(value)
    if not out:
        raise argparse.ArgumentTypeError("an empty list")
    return out


def kernel_list(text):
    names = []
    allowed = KERNELS + ["elementwise"] + torch_elementwise.NAMES
    for k in [k for k in text.split(",") if k]:
        if k not in allowed:
            raise argparse.ArgumentTypeError(f"'{k}' is not one of {', '.join(allowed)}")
        names += torch_elementwise.NAMES if k == "elementwise" else [k]
    return names


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--json", action="store_true", help="print one JSON object (default: a table)")
    p.add_argument("--quick", action="store_true", help="fewer shapes and reps")
    p.add_argument("--dry-run", action="store_true", help="check the arguments, list the cases, no GPU")
    p.add_argument("--reps", type=int, default=None)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--max-case-seconds", type=float, default=3.0)
    p.add_argument("--kernels", type=kernel_list, default=KERNELS)
    p.add_argument("--seqs", type=int_list, default=None)
    p.add_argument("--keys", type=int_list, default=None)
    p.add_argument("--gemm-m", type=int_list, default=None)
    a = p.parse_args(argv)
    if a.reps is not None and a.reps < 1:
        p.error("--reps must be at least 1")
    if a.warmup < 0 or not a.max_case_seconds > 0:
        p.error("--warmup must be >= 0 and --max-case-seconds > 0")
    if a.seqs is None:
        a.seqs = [1024, 4096] if a.quick else [512, 1024, 2048, 4096, 8192, 16384]
    if a.keys is None:
        a.keys = [4096] if a.quick else [1024, 4096, 16384]
    if a.gemm_m is None:
        a.gemm_m = [4096] if a.quick else [512, 1024, 2048, 4096, 8192, 16384]
    if a.reps is None:
        a.reps = 3 if a.quick else 10
    if a.quick:
        a.warmup = min(a.warmup, 1)
    return a


def plan_cases(a):
    """The cases of vreflect_cuda_bench (bench_options.cc: plan_cases), same order and shape keys."""
    cases = []
    for kernel in ("attention_fwd", "attention_bwd"):
        if kernel not in a.kernels:
            continue
        mult = 2.5 if kernel == "attention_bwd" else 1.0
        for s in a.seqs:
            for causal in (False, True):
                shape = {"batch": 1, "seq_q": s, "seq_k": s, "heads_q": HEADS_Q, "heads_kv": HEADS_KV,
                         "head_dim": HEAD_DIM}
                flop = mult * 4.0 * s * s * HEADS_Q * HEAD_DIM / (2.0 if causal else 1.0)
                cases.append({"kernel": kernel, "shape": shape, "causal": causal, "impl": "torch-sdpa", "flop": flop})
    for kernel in ("cross_attention_fwd", "cross_attention_bwd"):
        if kernel not in a.kernels:
            continue
        mult = 2.5 if kernel == "cross_attention_bwd" else 1.0
        for n in a.keys:
            shape = {"items": 1, "queries": CROSS_QUERIES, "keys": n, "heads": CROSS_HEADS,
                     "head_dim": CROSS_HEAD_DIM}
            flop = mult * 4.0 * CROSS_QUERIES * n * CROSS_HEADS * CROSS_HEAD_DIM
            cases.append({"kernel": kernel, "shape": shape, "impl": "torch-eager", "flop": flop})
    if "gemm" in a.kernels:
        for k, n in GEMM_KN:
            for m in a.gemm_m:
                cases.append({"kernel": "gemm", "shape": {"M": m, "N": n, "K": k}, "impl": "torch-matmul",
                              "flop": 2.0 * m * n * k})
    cases += torch_elementwise.plan(a.kernels, a.quick)
    return cases


def driver_version():
    """cuDriverGetVersion, as vreflect_cuda_bench's cudaDriverGetVersion ("13.0")."""
    try:
        lib = ctypes.CDLL("libcuda.so.1")
        v = ctypes.c_int(0)
        if lib.cuDriverGetVersion(ctypes.byref(v)) == 0:
            return f"{v.value // 1000}.{(v.value % 1000) // 10}"
    except OSError:
        pass
    return None


class Runner:
    def __init__(self, args):
        import torch  # only here: --dry-run works without torch

        self.torch = torch
        self.args = args
        if not torch.cuda.is_available():
            raise RuntimeError("torch_kernels.py: torch sees no CUDA GPU")
        self.dev = torch.device("cuda")
        gen = torch.Generator(device=self.dev)
        gen.manual_seed(0)
        self.gen = gen

    def device_info(self):
        p = self.torch.cuda.get_device_properties(0)
        return {"name": p.name, "cc": f"{p.major}.{p.minor}", "memory_bytes": int(p.total_memory),
                "driver": driver_version()}

    def rand(self, *shape, grad=False):
        t = (self.torch.rand(*shape, device=self.dev, generator=self.gen) * 2 - 1).to(self.torch.bfloat16)
        return t.requires_grad_(grad)

    def time(self, fn):
        torch, a = self.torch, self.args
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

        def once():
            start.record()
            fn()
            stop.record()
            stop.synchronize()
            return start.elapsed_time(stop)

        first = 0.0
        for _ in range(max(1, a.warmup)):
            first = once()
            if first * 1e-3 > a.max_case_seconds:
                break
        reps = max(1, min(a.reps, int(a.max_case_seconds / max(first * 1e-3, 1e-9))))
        times = [once() for _ in range(reps)]
        return statistics.median(times), reps

    def attention(self, case):
        torch = self.torch
        import torch.nn.functional as F

        s, causal = case["shape"]["seq_q"], case["causal"]
        bwd = case["kernel"] == "attention_bwd"
        q = self.rand(1, HEADS_Q, s, HEAD_DIM, grad=bwd)
        k = self.rand(1, HEADS_KV, s, HEAD_DIM, grad=bwd)
        v = self.rand(1, HEADS_KV, s, HEAD_DIM, grad=bwd)
        try:
            from torch.nn.attention import SDPBackend, sdpa_kernel
            flash = lambda: sdpa_kernel(SDPBackend.FLASH_ATTENTION)  # noqa: E731
        except ImportError:  # older torch
            flash = lambda: torch.backends.cuda.sdp_kernel(enable_math=False, enable_mem_efficient=False)  # noqa: E731

        expanded = {}  # k/v repeated to 28 heads, when the flash kernel does not take GQA itself

        def forward():
            with flash():
                if not expanded:
                    return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)
                return F.scaled_dot_product_attention(q, expanded["k"], expanded["v"], is_causal=causal)

        backend = "flash+gqa"
        try:
            out = forward()
        except (RuntimeError, TypeError):
            backend = "flash, k/v expanded to 28 heads"
            rep = HEADS_Q // HEADS_KV
            expanded["k"] = k.detach().repeat_interleave(rep, dim=1).requires_grad_(bwd)
            expanded["v"] = v.detach().repeat_interleave(rep, dim=1).requires_grad_(bwd)
            out = forward()
        if not bwd:
            ms, reps = self.time(forward)
        else:
            dout = self.rand(*out.shape)
            inputs = (q, expanded["k"], expanded["v"]) if expanded else (q, k, v)
            ms, reps = self.time(lambda: torch.autograd.grad(out, inputs, dout, retain_graph=True))
        return ms, reps, {"backend": backend}

    def cross_attention(self, case):
        torch = self.torch
        n = case["shape"]["keys"]
        bwd = case["kernel"] == "cross_attention_bwd"
        q = self.rand(1, CROSS_HEADS, CROSS_QUERIES, CROSS_HEAD_DIM, grad=bwd)
        k = self.rand(1, CROSS_HEADS, n, CROSS_HEAD_DIM, grad=bwd)
        v = self.rand(1, CROSS_HEADS, n, CROSS_HEAD_DIM, grad=bwd)
        scale = 1.0 / math.sqrt(CROSS_HEAD_DIM)

        def forward():
            p = torch.softmax((q @ k.transpose(-1, -2)) * scale, dim=-1, dtype=torch.float32).to(q.dtype)
            return p @ v

        if not bwd:
            ms, reps = self.time(forward)
        else:
            out = forward()
            dout = self.rand(*out.shape)
            ms, reps = self.time(lambda: torch.autograd.grad(out, (q, k, v), dout, retain_graph=True))
        return ms, reps, {}

    def gemm(self, case):
        m, n, k = case["shape"]["M"], case["shape"]["N"], case["shape"]["K"]
        a, w = self.rand(m, k), self.rand(n, k)
        ms, reps = self.time(lambda: self.torch.matmul(a, w.t()))
        return ms, reps, {}

    def run(self, case):
        fn = {"attention_fwd": self.attention, "attention_bwd": self.attention,
              "cross_attention_fwd": self.cross_attention, "cross_attention_bwd": self.cross_attention,
              "gemm": self.gemm}.get(case["kernel"], lambda c: torch_elementwise.run(self, c))
        try:
            return fn(case)
        except Exception as err:  # noqa: BLE001 - report it in the result and go on (e.g. out of memory)
            return None, 0, {"error": f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"}
        finally:
            self.torch.cuda.empty_cache()


def result(case, ms, reps, extra):
    r = {"kernel": case["kernel"], "shape": case["shape"], "dtype": case.get("dtype", "bf16")}
    if "causal" in case:
        r["causal"] = case["causal"]
    r["ms"] = round(ms, 4) if ms is not None else None
    r["tflops"] = round(case["flop"] / (ms * 1e-3) / 1e12, 2) if ms else None
    r["impl"] = case["impl"]
    r["reps"] = reps
    if case.get("bytes"):
        r["gbs"] = round(case["bytes"] / (ms * 1e-3) / 1e9, 1) if ms else None
    r.update(extra)
    return r


def main(argv):
    a = parse_args(argv)
    cases = plan_cases(a)
    out = {"device": None, "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    runner = None
    if a.dry_run:
        out["dry_run"] = True
    else:
        try:
            runner = Runner(a)
        except (ImportError, RuntimeError) as err:
            eprint(f"torch_kernels.py: {err}")
            return 2
        out["device"] = runner.device_info()
        out["torch"] = {"version": runner.torch.__version__, "cuda": runner.torch.version.cuda}
        if not a.json:
            d = out["device"]
            print(f"{d['name']} (sm {d['cc']}, {d['memory_bytes'] / 2**30:.1f} GiB, driver {d['driver']}); "
                  f"torch {out['torch']['version']} (CUDA {out['torch']['cuda']})", flush=True)
    results = []
    if not a.json:
        print(f"{'kernel':20} {'impl':16} {'shape':62} {'causal':>7} {'ms':>11} {'TFLOP/s':>9}", flush=True)
    for case in cases:
        ms, reps, extra = runner.run(case) if runner else (None, 0, {})
        r = result(case, ms, reps, extra)
        results.append(r)
        if not a.json:
            shape = " ".join(f"{k}={v}" for k, v in case["shape"].items())
            causal = "" if "causal" not in case else ("yes" if case["causal"] else "no")
            ms_text = "planned" if a.dry_run else ("null" if ms is None else f"{ms:.4g}")
            tf = "null" if r["tflops"] is None else f"{r['tflops']:.1f}"
            print(f"{case['kernel']:20} {case['impl']:16} {shape:62} {causal:>7} {ms_text:>11} {tf:>9}"
                  f"{'  ' + extra['error'] if 'error' in extra else ''}", flush=True)
    out["results"] = results
    if a.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
