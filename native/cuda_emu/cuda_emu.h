// CUDA-on-CPU emulator: runs unmodified CUDA kernel source (compiled as C++ by g++) so kernels can be
// tested without a GPU. Include cuda_compat.h rather than this file: it picks nvcc or the emulator.
//
// What runs: blocks/threads (1-3-D), __shared__ and dynamic shared memory, __syncthreads, warp shuffles
// (sync/xor/up/down with width), ballot/any/all, __syncwarp, named barriers (bar.sync id, count), atomics (add/max/min/CAS/exch), the math
// intrinsics in emu_device.h, cudaMalloc/Memcpy/Memset (host memory), cudaFuncSetAttribute for > 48 KiB
// dynamic shared memory, streams and events (emu_streams.h), stream capture and CUDA graphs (emu_graphs.h).
// What does not: inline PTX (mma, ldmatrix, cp.async and wgmma are modelled in the kernels' own headers, mma.cuh and
// wgmma.cuh), TMA, cooperative grid sync, warp-synchronous
// code without __syncwarp, timing and occupancy. __activemask() is approximate. The memory model between
// blocks is the host's. GPU fast-math rounding is not reproduced: compare with tolerances.
// Opt-in: shared-memory bank-conflict accounting of the modelled instructions (emu_banks.h; banks::Recorder,
// CUDAEMU_BANKS=1).
#pragma once
#include "cuda_emu/emu_device.h"
#include "cuda_emu/emu_runtime.h"
#include "cuda_emu/emu_scheduler.h"

#define CUDA_EMULATOR 1
