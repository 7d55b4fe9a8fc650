#!/usr/bin/env python3
"""The model bench's summary for gpu_session.sh: one line per figure of OUT/model_*.json (vreflect_cuda_model_bench)
and OUT/torch_infer*.json / torch_train.json (scripts_bench/torch_infer.py --synthetic, torch_train.py on the same
checkpoints, prompt and micro-batch), against issue 6's
targets: 7B decode >= 150 tok/s, training >= 40% MFU (judged only at full depth; cut depths are indicative).

  python3 native/cuda/bench/model/summary.py OUT_DIR
"""
import json
import os
import statistics
import sys


def load(out, name):
    path = os.path.join(out, name + ".json")
    if not os.path.exists(path):
        return None
    try:
        return json.load(open(path))
    except Exception as err:  # noqa: BLE001 - a crashed run leaves an empty or partial file
        print(f"{name}: no result ({type(err).__name__}: {err}); see {name}.err")
        return None


def mib(b):
    return "n/a" if b is None else f"{b / 2**20:,.0f} MiB"


def main(out):
    for name in ("model_infer", "model_infer_long"):
        d = load(out, name)
        if not d:
            continue
        i, s = d.get("infer") or {}, d["shape"]
        if "error" in i or not i:
            print(f"{name}: failed: {i.get('error', 'no infer section')}")
            continue
        print(f"{name}: {d['device']['name']}, {d['date']}, {s['name']}: prompt {i['prompt_tokens']} tokens "
              f"({i['image_tokens']} image), prefill {i['prefill_ms']} ms = {i['prefill_tokens_per_s']} tok/s, "
              f"{i['prefill_tflops']} TFLOP/s (vision {i['prefill_vision_ms']} ms, chunk {i['prefill_chunk']})")
        tps = i["decode_wall_tokens_per_s"]
        full = s["preset"] == "7b" and s["layers"] == s["full_layers"]
        verdict = ("MET" if tps and tps >= 150 else "NOT MET") if full else "n/a (not the full-depth 7B)"
        print(f"  decode {tps} tok/s over the whole generate call ({i['decode_wall_ms_per_token']} ms/token; forwards "
              f"alone {i['decode_tokens_per_s']} tok/s, {i['decode_gbs']} GB/s of weights + KV) vs target >= 150 tok/s: "
              f"{verdict}")
        g = i.get("graphs")
        if g:
            print(f"  CUDA graphs: on {g['on']['decode_wall_tokens_per_s']} tok/s ({g['on']['graph_launches']} of "
                  f"{g['on']['decode_forwards']} steps replayed), off {g['off']['decode_wall_tokens_per_s']} tok/s: "
                  f"x{g['wall_speedup']} (main runs: VREFLECT_CUDA_GRAPHS={i.get('graphs_mode', 'auto')})")
        if i.get("latent"):
            lat = i["latent"]
            print(f"  latent run: {lat['latent_steps_run']} latent steps, {lat['forwards_per_s']} forwards/s")
        m = i["memory"]
        print(f"  device memory: peak {mib(m['peak_used'])} vs plan {mib(m['plan']['gpu_bytes'])} "
              f"(planInference, whole prompt; weights {mib(m['arenas']['weights'])})")
    for name in ("model_train", "model_train_recompute", "model_train_s2", "model_train_full", "model_train_full_recompute"):
        d = load(out, name)
        if not d:
            continue
        t, s = d.get("train") or {}, d["shape"]
        if "error" in t or not t:
            print(f"{name}: failed: {t.get('error', 'no train section')}")
            continue
        mfu = t["mfu"]
        full = s["preset"] == "7b" and s["layers"] == s["full_layers"]
        verdict = ("MET" if mfu and mfu >= 0.4 else "NOT MET") if full else "n/a (not the full-depth 7B: indicative)"
        ckpt = {True: "recomputing each layer", False: "no recomputation"}.get(t.get("checkpointing"), "checkpointing ?")
        print(f"{name}: {d['device']['name']}, {d['date']}, {s['name']}, stage {t['stage']}, {t['optimizer_states']} optimizer states, {ckpt}: "
              f"{t['tokens']} tokens x {t['grad_accum']} micro-batches per step, {t['step_ms']} ms/step, "
              f"{t['tokens_per_s']} tok/s")
        print(f"  MFU {mfu} (forward+backward alone {t['mfu_forward_backward']}) vs target >= 0.40: {verdict}; "
              f"loss {t['losses'][0]['loss']:.4f} -> {t['losses'][-1]['loss']:.4f}")
        tm = t["memory"]
        if not tm.get("plan"):
            print(f"  device memory peak {mib(tm['peak_used'])} (stage 2: no ported plan)")
            continue
        print(f"  device memory peak {mib(tm['peak_used'])} vs plan {mib(tm['plan']['gpu_bytes'])} GPU (planTraining, "
              f"stage 1, {t['optimizer_states']}); host: ParamStore {mib(tm['host_param_store'])} + pinned "
              f"{mib(tm['pinned_staging'])} vs plan {mib(tm['plan']['host_bytes'])} (with a 2 GiB process baseline)")
    for name in ("torch_infer", "torch_infer_long"):
        ti = load(out, name)
        if not ti:
            continue
        if not ti.get("ok"):
            print(f"{name}.py failed: {ti.get('error')}")
            continue
        pre = statistics.median(r["prefill_ms"] for r in ti["runs"])
        dec = statistics.median(r["decode_ms_per_token"] for r in ti["runs"])
        print(f"{name}: {ti['device']}, torch {ti['torch']}, transformers {ti['transformers']} (sdpa, generate): prompt "
              f"{ti['prompt_tokens']} tokens, prefill {pre:.1f} ms = {1e3 * ti['prompt_tokens'] / pre:.0f} tok/s, decode "
              f"{dec:.2f} ms/token = {1e3 / dec if dec > 0 else 0:.1f} tok/s")
    tt = load(out, "torch_train")
    if tt:
        if tt.get("ok"):
            ms = statistics.median(s["step_ms"] for s in tt["steps"])
            print(f"torch_train.py: {tt['device']}, torch {tt['torch']}, transformers {tt['transformers']}: "
                  f"{tt['tokens']} tokens x {tt['grad_accum']} per step, {ms:.0f} ms/step = "
                  f"{1e3 * tt['tokens'] * tt['grad_accum'] / ms:.0f} tok/s, peak {mib(tt.get('peak_device_bytes'))}")
        else:
            print(f"torch_train.py failed: {tt.get('error')}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "gpu-out")
