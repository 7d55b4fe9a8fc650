#!/usr/bin/env bash
# Registers and spills of the Hopper wgmma kernels (attention_wgmma.cu, attention_wgmma_backward.cu, wgmma_probe.cu)
# for sm_90a (ptxas -v): the tables the kernels README quotes for the wgmma forward's variants (template args WG, KN,
# OVERLAP, PINGPONG: 1,0 = the "o" variants, 1,1 the "p" ones) and the backward's block shapes (WG). A variant that
# spills is worse than useless.
#   bash native/cuda/bench/attention_wgmma_registers.sh
set -eu
NVCC=${NVCC:-nvcc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for f in attention_wgmma attention_wgmma_backward wgmma_probe; do
  "$NVCC" -O3 -DNDEBUG -std=c++17 -Inative --generate-code=arch=compute_90a,code=sm_90a -Xptxas -v -x cu -c \
    native/cuda/kernels/$f.cu -o "$tmp/$f.o" >> "$tmp/log" 2>&1 || { cat "$tmp/log"; exit 1; }
done
python3 - "$tmp/log" <<'PY'
import re, sys
print("| kernel | template args | sm_90a regs | spill st / ld (B) |")
print("|---|---|---|---|")
cur = None
for line in open(sys.argv[1]):
    m = re.search(r"Compiling entry function '(\S+)'", line)
    if m:
        k = re.search(r"(attention_wgmma_forward_kernel|attention_wgmma_dkdv_kernel|attention_wgmma_dq_kernel|wgmma_probe_kernel|wgmma_image_kernel)(I(?:L[ib]\d+E)+E)?", m.group(1))
        cur = [k.group(1), ",".join(re.findall(r"L[ib](\d+)E", k.group(2) or "")), None, None] if k else None
        continue
    if cur is None:
        continue
    m = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", line)
    if m:
        cur[3] = f"{m.group(1)} / {m.group(2)}" + (" SPILLS" if int(m.group(1)) or int(m.group(2)) else "")
    m = re.search(r"Used (\d+) registers", line)
    if m:
        cur[2] = m.group(1)
        print(f"| {cur[0]} | {cur[1]} | {cur[2]} | {cur[3]} |")
        cur = None
PY
