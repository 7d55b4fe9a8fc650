#include "cuda/model/decode_graph.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "core/error.h"
#include "cuda/model/cuda_runtime.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {
std::atomic<int64_t> g_launches{0}, g_captures{0};
}  // namespace

GraphMode graph_mode_from_env() {
  const char* v = std::getenv("VREFLECT_CUDA_GRAPHS");
  if (!v || !*v || std::string(v) == "auto") return GraphMode::Auto;
  if (std::string(v) == "on") return GraphMode::On;
  if (std::string(v) == "off") return GraphMode::Off;
  fail("VREFLECT_CUDA_GRAPHS=", v, " is not one of auto, on, off");
}

int64_t DecodeGraphs::launches() { return g_launches.load(std::memory_order_relaxed); }
int64_t DecodeGraphs::captures() { return g_captures.load(std::memory_order_relaxed); }

DecodeGraphs::DecodeGraphs(Stream s, bool enabled) : s_(s), enabled_(enabled && s != nullptr) {}

DecodeGraphs::~DecodeGraphs() {
  for (Entry& e : entries_)
    if (e.exec) cudaGraphExecDestroy(e.exec);
}

void DecodeGraphs::give_up(const std::string& why) {
  (void)cudaGetLastError();  // the failure's code is in `why`; later launches report their own
  std::fprintf(stderr, "vreflect: CUDA graph of the decode step failed (%s): decoding eagerly\n", why.c_str());
  enabled_ = false;
}

CUgraphExec_st* DecodeGraphs::capture(const std::function<void()>& step) {
  // Thread-local mode: a forbidden call (cudaMalloc, a sync) from THIS thread invalidates the capture, while other
  // threads (another model's session) keep theirs legal.
  cudaError_t e = cudaStreamBeginCapture(s_, cudaStreamCaptureModeThreadLocal);
  if (e != cudaSuccess) {
    give_up(std::string("cudaStreamBeginCapture: ") + cudaGetErrorString(e));
    return nullptr;
  }
  std::string threw;
  try {
    step();
  } catch (const std::exception& x) {
    threw = x.what();
  }
  cudaGraph_t graph = nullptr;
  e = cudaStreamEndCapture(s_, &graph);  // ends the capture whatever happened, so the stream is usable again
  if (!threw.empty() || e != cudaSuccess) {
    if (graph) cudaGraphDestroy(graph);
    give_up(threw.empty() ? std::string("cudaStreamEndCapture: ") + cudaGetErrorString(e) : "capture: " + threw);
    return nullptr;
  }
  cudaGraphExec_t exec = nullptr;
  e = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  if (e != cudaSuccess) {
    give_up(std::string("cudaGraphInstantiate: ") + cudaGetErrorString(e));
    return nullptr;
  }
  g_captures.fetch_add(1, std::memory_order_relaxed);
  return exec;
}

void DecodeGraphs::run(const DecodeStepKey& key, const std::function<void()>& step) {
  if (!enabled_) return step();
  size_t i = 0;
  while (i < entries_.size() && !entries_[i].key.same(key)) i++;
  if (i == entries_.size()) {  // first time: eagerly, remembered
    if (entries_.size() == kMaxGraphs) {
      if (entries_.front().exec) cudaGraphExecDestroy(entries_.front().exec);
      entries_.erase(entries_.begin());
    }
    entries_.push_back(Entry{key, nullptr});
    return step();
  }
  Entry entry = entries_[i];  // moved to the back: most recently used
  entries_.erase(entries_.begin() + long(i));
  if (!entry.exec) entry.exec = capture(step);
  if (!entry.exec) return step();  // graphs are off from now on (give_up said why)
  const cudaError_t e = cudaGraphLaunch(entry.exec, s_);
  if (e != cudaSuccess) {  // nothing of the step ran: run it eagerly
    cudaGraphExecDestroy(entry.exec);
    give_up(std::string("cudaGraphLaunch: ") + cudaGetErrorString(e));
    return step();
  }
  entries_.push_back(entry);
  g_launches.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
