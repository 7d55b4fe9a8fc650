#!/usr/bin/env python3
"""Best tensor-core attention tile variant per case, from `vreflect_cuda_bench --json --attention-tiles ...`.

usage: tile_summary.py bench_tiles.json
Prints, per (kernel, sequence length, causal), every variant's TFLOP/s best first, the winner against issue 6's
targets at head dim 128 (forward >= 350, backward >= 250 TFLOP/s), and the environment line that selects the
winners (the defaults in attention_tc.cu stay 64x64w4 until a GPU session has measured this). The Hopper wgmma
kernels' variants ("wgmma:<variant>", attention_wgmma.cu / attention_wgmma_backward.cu) are ranked beside the
mma.sync ones; their winners are printed as the VREFLECT_ATTENTION_TILE_WGMMA / _WGMMA_BWD settings, and whether
wgmma beat mma.sync per case. The wgmma forward's overlap variants ("<shape>o": softmax under the previous tile's
P V) are also printed against their plain shape, per case, so one run says whether the overlap pays; the ping-pong
variants ("<shape>p": the two warpgroups' GEMMs in turns) against both the plain and the overlap variant of their
shape.
"""
import json
import sys

TARGETS = {"attention_fwd": 350.0, "attention_bwd": 250.0}


def main(path):
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError) as err:  # the bench failed before writing its JSON: say so in one line
        print(f"{path}: not readable as the bench's JSON ({err})")
        return 1
    cases = {}
    for r in doc.get("results", []):
        if r.get("kernel") not in TARGETS:
            continue
        key = (r["kernel"], r["shape"].get("seq_q"), bool(r.get("causal")))
        cases.setdefault(key, []).append(r)
    if not cases:
        print(f"{path}: no attention_fwd / attention_bwd results")
        return 1
    best_by_kernel = {}
    for (kernel, seq, causal), rows in sorted(cases.items()):
        ran = sorted((r for r in rows if r.get("tflops") is not None), key=lambda r: -r["tflops"])
        failed = [r for r in rows if r.get("tflops") is None]
        label = f"{kernel} seq={seq} {'causal' if causal else 'full'}"
        if not ran:
            print(f"{label}: nothing ran ({failed[0].get('error', 'no error given') if failed else 'no rows'})")
            continue
        best = ran[0]
        tile = best.get("tile", "?")
        verdict = "meets" if best["tflops"] >= TARGETS[kernel] else "below"
        print(f"{label}: best {tile} {best['tflops']:.1f} TFLOP/s ({verdict} the {TARGETS[kernel]:.0f} target)")
        print("    " + " | ".join(f"{r.get('tile', '?')} {r['tflops']:.1f}" for r in ran)
              + "".join(f" | {r.get('tile', '?')} failed: {r.get('error', '')}" for r in failed))
        wins = best_by_kernel.setdefault(kernel, {})
        wins[tile] = wins.get(tile, 0) + 1
        # the wgmma kernel against the best mma.sync variant of the same case; each family's winner counted apart
        wg = [r for r in ran if str(r.get("tile", "")).startswith("wgmma:")]
        tc = [r for r in ran if not str(r.get("tile", "")).startswith("wgmma:")]
        if wg and tc:
            print(f"    wgmma best {wg[0]['tile']} {wg[0]['tflops']:.1f} vs mma.sync best {tc[0].get('tile', '?')} "
                  f"{tc[0]['tflops']:.1f} TFLOP/s ({wg[0]['tflops'] / tc[0]['tflops']:.2f}x)")
        by_tile = {r.get("tile"): r["tflops"] for r in wg}
        pairs = [(t, t[:-1]) for t in sorted(by_tile) if t.endswith("o") and t[:-1] in by_tile]
        if pairs:
            print("    overlap vs plain: " + " | ".join(f"{o.removeprefix('wgmma:')} {by_tile[o] / by_tile[p]:.2f}x"
                                                     for o, p in pairs))
        # ping-pong ("<shape>p": the two warpgroups' GEMMs in turns, on the overlap order) against the plain and the
        # overlap variant of its shape: whether the turns pay over the intra-warpgroup overlap alone
        pp = [(t, t[:-1], t[:-1] + "o") for t in sorted(by_tile) if t.endswith("p") and t[:-1] in by_tile]
        if pp:
            print("    ping-pong vs plain / overlap: " + " | ".join(
                f"{x.removeprefix('wgmma:')} {by_tile[x] / by_tile[p]:.2f}x / "
                + (f"{by_tile[x] / by_tile[o]:.2f}x" if o in by_tile else "-") for x, p, o in pp))
        suffix = "fwd" if kernel == "attention_fwd" else "bwd"
        for family, top in (("wgmma_" + suffix, wg), ("tc_" + suffix, tc)):
            if top:
                w = best_by_kernel.setdefault(family, {})
                w[top[0].get("tile", "?")] = w.get(top[0].get("tile", "?"), 0) + 1
    env = {"tc_fwd": "VREFLECT_ATTENTION_TILE_FWD", "tc_bwd": "VREFLECT_ATTENTION_TILE_BWD",
           "wgmma_fwd": "VREFLECT_ATTENTION_TILE_WGMMA", "wgmma_bwd": "VREFLECT_ATTENTION_TILE_WGMMA_BWD"}
    picks = [f"{env[k]}={max(w, key=w.get).removeprefix('wgmma:')}" for k, w in sorted(best_by_kernel.items())
             if k in env]
    print("most wins: " + " ".join(picks))
    dev = doc.get("device") or {}
    tiles = dev.get("attention_tiles")
    if isinstance(tiles, dict):  # what auto ran on this GPU (vreflect_cuda_bench since session 9)
        smem = dev.get("smem_optin_bytes")
        print(f"this GPU runs (auto or the environment): fwd {tiles.get('fwd')} bwd {tiles.get('bwd')}"
              + (f" ({smem // 1024} KiB shared memory per block)" if isinstance(smem, int) else "")
              + "; a new default goes first in kFwdPreference / kBwdPreference (attention_tc.cu)")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[2])
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
