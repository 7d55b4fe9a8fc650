// CUDA graphs for GpuSession's decode step (gpu_session.h): one step's device work captured on a stream once per
// step shape and replayed with a single cudaGraphLaunch per token, instead of ~14 launches per layer plus the
// cuBLASLt calls, each with its host cost.
//
//   graph_mode_from_env   VREFLECT_CUDA_GRAPHS = auto (default) | on | off. auto and on capture (on a GPU and in the
//                         emulator alike); off runs every step eagerly. Anything else: a one-line vr::Error.
//   DecodeStepKey         what a captured step bakes in: the decode plan (rows, split-KV and split count, the KV
//                         cache's storage and capacity), the feed (token embedding / hidden state), the probe.
//   DecodeGraphs::run     replays the graph of a known key; captures one the SECOND time a key is run (the first
//                         run is eager, so lazy host-side set-up - cuBLASLt plans, kernel attributes - happens
//                         outside a capture); otherwise, or when graphs are off, runs the step eagerly. A capture
//                         or instantiation that fails (the step threw, or CUDA refused a call) logs one line on
//                         stderr and turns graphs off for this object: the step then runs eagerly, same launches,
//                         same results.
// A few graphs are kept (latent phases alternate the feed), least recently used dropped first. Captures are
// thread-local (cudaStreamCaptureModeThreadLocal): other threads' allocations stay legal meanwhile; work another
// thread puts on the legacy null stream during a capture would still meet the capturing (blocking) stream and fail
// (cudaErrorStreamCaptureImplicit) - one model per process, or sessions of one model (serialised by its lock), is
// what the CLI runs. In the emulator cuBLASLt is absent and the GEMM kernel's launches are recorded like any other;
// on a GPU cublasLtMatmul only enqueues kernels (its workspace is allocated before any capture), so it is captured.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cuda/model/gpu_language_model.h"

struct CUgraphExec_st;  // cudaGraphExec_t's pointee (driver_types.h)

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

enum class GraphMode { Auto, On, Off };
GraphMode graph_mode_from_env();

struct DecodeStepKey {
  GpuLanguageModel::DecodePlan plan;
  bool feed_hidden = false;
  bool probe = false;
  bool same(const DecodeStepKey& o) const {
    return plan.same(o.plan) && feed_hidden == o.feed_hidden && probe == o.probe;
  }
};

class DecodeGraphs {
 public:
  DecodeGraphs(Stream s, bool enabled);
  ~DecodeGraphs();
  DecodeGraphs(const DecodeGraphs&) = delete;
  DecodeGraphs& operator=(const DecodeGraphs&) = delete;

  // Enqueues one step on the stream: `step` queues its work (and must only queue work on the stream).
  void run(const DecodeStepKey& key, const std::function<void()>& step);
  bool enabled() const { return enabled_; }
  static int64_t launches();  // over the process: steps run by cudaGraphLaunch
  static int64_t captures();  // graphs captured and instantiated

 private:
  static constexpr size_t kMaxGraphs = 4;
  struct Entry {
    DecodeStepKey key;
    CUgraphExec_st* exec = nullptr;  // null: run once eagerly, not captured yet
  };
  // Captures `step` into an executable graph; null (after one line on stderr) when CUDA or the step refuses.
  CUgraphExec_st* capture(const std::function<void()>& step);
  void give_up(const std::string& why);
  Stream s_;
  bool enabled_;
  std::vector<Entry> entries_;  // most recently used last
};

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
