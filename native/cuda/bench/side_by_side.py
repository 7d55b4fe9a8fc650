"""Print the results of several vreflect_cuda_bench / torch_kernels.py JSON files side by side: one line per
(kernel, shape, mask) with each implementation's figure - TFLOP/s (and GB/s where the case reports it), or GB/s and
ms for a bandwidth-only case (tflops 0: the memory-bound kernels). Used by gpu_session.sh; no dependencies.
  python3 native/cuda/bench/side_by_side.py bench_vreflect.json bench_torch.json ..."""
import json
import sys


def cell(r):
    if r.get("tflops") == 0 and r.get("gbs") is not None:  # a memory-bound case: bandwidth is its figure
        return f"{r['impl']} {r['gbs']} GB/s ({r['ms']} ms)"
    gbs = f" {r['gbs']} GB/s" if r.get("gbs") is not None else ""
    return f"{r['impl']} {r['tflops']}{gbs}"


def main(paths):
    rows = {}
    for path in paths:
        try:
            with open(path) as f:
                doc = json.load(f)
        except Exception as err:  # noqa: BLE001 - a missing / partial file is reported, the others still print
            print(f"{path}: {err}")
            continue
        for r in doc["results"]:
            rows.setdefault((r["kernel"], json.dumps(r["shape"]), r.get("causal")), []).append(cell(r))
    for (kernel, shape, causal), impls in rows.items():
        print(f"{kernel:20} {shape:90} {'' if causal is None else str(causal):6} " + " | ".join(impls))


if __name__ == "__main__":
    main(sys.argv[1:])
