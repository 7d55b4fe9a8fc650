#!/usr/bin/env bash
# Registers and spills of every kernel instance in attention_tc.cu (ptxas -v, one nvcc run per arch, ~15 s each):
# the table the kernels README quotes for the tile-shape variants. A variant that spills is worse than useless.
#   bash native/cuda/bench/attention_tc_registers.sh            # sm_80 and sm_90
#   ARCHS="90" bash native/cuda/bench/attention_tc_registers.sh
# Columns: kernel, head-dim tile DP, variant name (as VREFLECT_ATTENTION_TILE_FWD / _BWD spell it), then per arch
# "registers / spill-store bytes / spill-load bytes", and the shared memory the launcher asks for.
set -eu
ARCHS=${ARCHS:-80 90}
NVCC=${NVCC:-nvcc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for a in $ARCHS; do
  "$NVCC" -O3 -DNDEBUG -std=c++17 -Inative --generate-code=arch=compute_$a,code=sm_$a -Xptxas -v -x cu -c \
    native/cuda/kernels/attention_tc.cu -o "$tmp/tc$a.o" > "$tmp/sm$a.log" 2>&1 || { cat "$tmp/sm$a.log"; exit 1; }
done
python3 - "$tmp" $ARCHS <<'PY'
import re, sys
tmp, archs = sys.argv[1], sys.argv[2:]
rows = {}
for a in archs:
    cur = None
    for line in open(f"{tmp}/sm{a}.log"):
        m = re.search(r"Compiling entry function '(\S+)'", line)
        if m:
            cur = None
            k = re.search(r"attention_tc_(forward|dkdv|dq)_kernelILi(\d+)E((?:Li\d+E)+)", m.group(1))
            if k:
                kind, dp = k.group(1), int(k.group(2))
                args = [int(x) for x in re.findall(r"Li(\d+)E", k.group(3))]
                ld = dp + 8
                if kind == "forward":
                    mt, w, kn, st = args
                    rows_ = 16 * mt * w
                    smem = 2 * (rows_ * ld + (2 if st else 4) * kn * ld)
                    name = f"{rows_}x{kn}w{w}" + ("s" if st else "")
                else:
                    w, t, db = args  # db: inner tiles double-buffered ("d")
                    bufs = 2 if db else 1
                    smem = 2 * (2 * 16 * w * ld + bufs * 2 * t * ld) + (bufs * 2 * t * 4 if kind == "dkdv" else 0)
                    name = f"{16 * w}x{t}w{w}" + ("d" if db else "")
                cur = (kind, dp, name, smem)
                rows.setdefault(cur, {})
            continue
        if cur is None:
            continue
        m = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", line)
        if m:
            rows[cur][a] = [None, int(m.group(1)), int(m.group(2))]
        m = re.search(r"Used (\d+) registers", line)
        if m and a in rows[cur]:
            rows[cur][a][0] = int(m.group(1))
order = {"forward": 0, "dkdv": 1, "dq": 2}
print("| kernel | DP | variant | " + " | ".join(f"sm_{a} regs / spill st / ld (B)" for a in archs) + " | smem KiB |")
print("|---|---|---|" + "---|" * len(archs) + "---|")
for key in sorted(rows, key=lambda r: (order[r[0]], -r[1], [int(x) for x in re.findall(r"\d+", r[2])])):
    kind, dp, name, smem = key
    cells = []
    for a in archs:
        r, st, ld = rows[key].get(a, [None, None, None])
        cells.append(f"{r} / {st} / {ld}" + (" SPILLS" if st or ld else ""))
    print(f"| {kind} | {dp} | {name} | " + " | ".join(cells) + f" | {smem / 1024:.1f} |")
PY
