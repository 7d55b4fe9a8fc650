// CUDA-on-CPU emulator, part 5: stream capture and CUDA graphs, the subset a captured decode step needs.
//
//   cudaStreamBeginCapture(s, mode)   s must be a created stream that is not capturing (the null stream cannot
//                                     capture). Every mode is treated as global (the strictest; the tests run one
//                                     thread, where thread-local and global forbid the same calls).
//   while capturing                   kernels, copies and memsets queued on s are recorded (emu_streams.h submit /
//                                     launch), with the arguments of the call; nothing runs. Forbidden, failing
//                                     as on a GPU and invalidating the capture: a sync of s or of the device,
//                                     a copy from / to pageable host memory on s, work on the legacy null stream
//                                     while a blocking stream captures (cudaErrorStreamCaptureImplicit),
//                                     cudaMalloc / cudaFree / cudaFreeHost, a query or sync of an event recorded
//                                     in the capture (cudaErrorCapturedEvent), a wait on an outside event.
//   cudaStreamEndCapture(s, &g)       the graph, or cudaErrorStreamCaptureInvalidated (g null) after any of the
//                                     above; cudaErrorIllegalState when s was not capturing.
//   cudaGraphInstantiate(&x, g, 0)    an executable copy of the nodes (no default flags: some files also see the
//                                     toolkit declaration, which has one). VREFLECT_CUDA_EMU_GRAPH_FAIL=1 makes it fail
//                                     (cudaErrorNotSupported) so callers' eager fallback can be tested.
//   cudaGraphLaunch(x, s)             the nodes, in capture order, queued on s like any other work (they run when
//                                     s is drained: as late as CUDA allows); on the null stream they run now.
// Multi-stream (fork / join) captures, graph updates and node-level graph APIs are not emulated.
// Included by emu_runtime.h after emu_streams.h.
#pragma once
#include <cstdlib>

#include "cuda_emu/emu_streams.h"

namespace cudaemu {
struct EmuGraphExec {
  std::vector<std::function<void()>> nodes;
};
inline std::set<EmuGraph*> live_graphs;
inline std::set<EmuGraphExec*> live_execs;
}  // namespace cudaemu

inline cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode) {
  std::lock_guard<std::recursive_mutex> lock(cudaemu::stream_mutex);
  cudaemu::EmuStream* st = cudaemu::stream_of(s);
  if (!st) return cudaemu::set_error(cudaErrorStreamCaptureUnsupported);  // the legacy / null stream
  if (st->capture) return cudaemu::set_error(cudaErrorIllegalState);
  st->capture = new cudaemu::EmuGraph;
  st->capture_error = cudaSuccess;
  st->capture_id = ++cudaemu::next_capture_id;
  return cudaSuccess;
}

inline cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t* graph) {
  std::lock_guard<std::recursive_mutex> lock(cudaemu::stream_mutex);
  *graph = nullptr;
  cudaemu::EmuStream* st = cudaemu::stream_of(s);
  if (!st || !st->capture) return cudaemu::set_error(cudaErrorIllegalState);
  cudaemu::EmuGraph* g = st->capture;
  const cudaError_t why = st->capture_error;
  st->capture = nullptr;
  st->capture_error = cudaSuccess;
  st->capture_id = 0;
  if (why != cudaSuccess) {
    delete g;
    return cudaemu::set_error(cudaErrorStreamCaptureInvalidated);
  }
  cudaemu::live_graphs.insert(g);
  *graph = reinterpret_cast<cudaGraph_t>(g);
  return cudaSuccess;
}

inline cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus* status) {
  std::lock_guard<std::recursive_mutex> lock(cudaemu::stream_mutex);
  cudaemu::EmuStream* st = cudaemu::stream_of(s);
  *status = cudaStreamCaptureStatusNone;
  if (!st) return cudaemu::legacy_stream_use();  // asking the legacy stream is itself an implicit dependency
  if (st->capture)
    *status = st->capture_error == cudaSuccess ? cudaStreamCaptureStatusActive : cudaStreamCaptureStatusInvalidated;
  return cudaSuccess;
}

inline cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
  std::lock_guard<std::recursive_mutex> lock(cudaemu::stream_mutex);
  *exec = nullptr;
  auto* g = reinterpret_cast<cudaemu::EmuGraph*>(graph);
  if (!g || !cudaemu::live_graphs.count(g)) return cudaemu::set_error(cudaErrorInvalidValue);
  const char* fail = std::getenv("VREFLECT_CUDA_EMU_GRAPH_FAIL");
  if (fail && *fail && *fail != '0') return cudaemu::set_error(cudaErrorNotSupported);
  auto* x = new cudaemu::EmuGraphExec{g->nodes};
  cudaemu::live_execs.insert(x);
  *exec = reinterpret_cast<cudaGraphExec_t>(x);
  return cudaSuccess;
}

inline cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s) {
  std::lock_guard<std::recursive_mutex> lock(cudaemu::stream_mutex);
  auto* x = reinterpret_cast<cudaemu::EmuGraphExec*>(exec);
  if (!x || !cudaemu::live_execs.count(x)) return cudaemu::set_error(cudaErrorInvalidValue);
  for (const std::function<void()>& node : x->nodes)
    if (const cudaError_t e = cudaemu::submit(s, node)) return e;
  return cudaSuccess;
}

// Queued launches keep their own copies of the nodes, so an executable graph can go while they are pending.
inline cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  std::lock_guard<std::recursive_mutex> lock(cudaemu::stream_mutex);
  auto* x = reinterpret_cast<cudaemu::EmuGraphExec*>(exec);
  if (!x || !cudaemu::live_execs.erase(x)) return cudaemu::set_error(cudaErrorInvalidValue);
  delete x;
  return cudaSuccess;
}
inline cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  std::lock_guard<std::recursive_mutex> lock(cudaemu::stream_mutex);
  auto* g = reinterpret_cast<cudaemu::EmuGraph*>(graph);
  if (!g || !cudaemu::live_graphs.erase(g)) return cudaemu::set_error(cudaErrorInvalidValue);
  delete g;
  return cudaSuccess;
}
