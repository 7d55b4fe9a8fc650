// CUDA-on-CPU emulator, part 4: asynchronous streams, events and copies, emulated as LATE as CUDA allows, so a
// missing synchronisation shows up as wrong values in a test instead of only on a GPU under load.
//
// The model (CUDA's documented semantics, "Asynchronous Concurrent Execution" in the programming guide):
//   - a stream made by cudaStreamCreate[WithFlags] keeps a FIFO of the copies and memsets queued on it; they run
//     only when something forces them: cudaStreamSynchronize / cudaEventSynchronize / cudaStreamWaitEvent on an
//     event recorded after them, cudaDeviceSynchronize, cudaFree / cudaFreeHost / cudaStreamDestroy (which
//     synchronise), or - for a BLOCKING stream (flags cudaStreamDefault) only - any work on the legacy default
//     stream (the null stream), which waits for every blocking stream. A cudaStreamNonBlocking stream is never
//     drained by null-stream work: code that forgets its event waits reads stale data here;
//   - host <-> device copies follow the pinned / pageable rules: a copy from PAGEABLE host memory takes the source
//     when it is queued (the host may reuse it on return) and lands later; a copy to pageable host memory is
//     synchronous (the stream is drained first); copies from / to PINNED memory (cudaHostAlloc) run when their
//     turn comes, reading and writing the host buffer at that time - so a host that refills a pinned staging
//     buffer before the copy out of it has run sends the new values, as a GPU would;
//   - kernel launches are not deferred (they run at launch, after the work queued before them on their stream,
//     and on the null stream after the blocking streams' work): a legal order, so results stay exact.
// Work on the null stream itself (and on the legacy / per-thread handles) runs at once.
// Stream capture (emu_graphs.h has the graph API): while a created stream captures, what is queued on it (copies,
// memsets, kernel launches) is RECORDED into its graph instead of queued, and runs only when the instantiated graph
// is launched; the calls CUDA forbids during a global-mode capture fail as on a GPU and invalidate the capture
// (capture_forbidden / legacy_stream_use below; cudaStreamEndCapture then answers cudaErrorStreamCaptureInvalidated).
// Included by emu_runtime.h after its error helpers (cudaemu::set_error).
#pragma once
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

#include <driver_types.h>

namespace cudaemu {

// A captured graph (cudaGraph_t) and its instantiation (cudaGraphExec_t): the operations in capture order (one
// stream, so the order is the dependency chain), each a closure over the arguments fixed at capture.
struct EmuGraph {
  std::vector<std::function<void()>> nodes;
};

struct EmuStream {
  bool blocking = true;                        // cudaStreamDefault: the null stream waits for it
  std::deque<std::function<void()>> pending;   // queued, not yet run
  uint64_t queued = 0, ran = 0;                // operation k (1-based) has run once ran >= k
  EmuGraph* capture = nullptr;                 // non-null while capturing (cudaStreamBeginCapture)
  cudaError_t capture_error = cudaSuccess;     // what invalidated the capture, if anything
  uint64_t capture_id = 0;                     // which capture sequence (events recorded in it remember it)
};

struct EmuEvent {
  EmuStream* stream = nullptr;  // null: recorded on the null stream (complete at once)
  uint64_t upto = 0;            // the stream's operations up to this one precede the event
  uint64_t capture_id = 0;      // non-zero: recorded in that capture sequence (a graph node, not a stream point)
};

// One lock over all queues; an operation never calls back into the runtime, so running one under it is safe.
inline std::recursive_mutex stream_mutex;
inline std::set<EmuStream*> live_streams;
inline std::set<EmuEvent*> live_events;
inline std::map<const char*, size_t> pinned;  // cudaHostAlloc'd blocks: start -> bytes

// The stream a handle names, or null for the null stream and handles not made by cudaStreamCreate.
inline EmuStream* stream_of(cudaStream_t s) {
  auto* p = reinterpret_cast<EmuStream*>(s);
  std::lock_guard<std::recursive_mutex> lock(stream_mutex);
  return p && live_streams.count(p) ? p : nullptr;
}

inline uint64_t next_capture_id = 0;

// The streams capturing now (global mode: every capture in the emulator is one).
inline bool any_capture(bool blocking_only = false) {
  std::lock_guard<std::recursive_mutex> lock(stream_mutex);
  for (EmuStream* s : live_streams)
    if (s->capture && (!blocking_only || s->blocking)) return true;
  return false;
}
inline void invalidate(EmuStream* s, cudaError_t why) {
  if (s->capture && s->capture_error == cudaSuccess) s->capture_error = why;
}
// A call CUDA forbids while any stream captures in global mode (cudaMalloc, cudaFree, cudaDeviceSynchronize, ...):
// cudaErrorStreamCaptureUnsupported, and every capture is invalidated. cudaSuccess when nothing captures.
inline cudaError_t capture_forbidden() {
  std::lock_guard<std::recursive_mutex> lock(stream_mutex);
  cudaError_t e = cudaSuccess;
  for (EmuStream* s : live_streams)
    if (s->capture) {
      invalidate(s, cudaErrorStreamCaptureUnsupported);
      e = cudaErrorStreamCaptureUnsupported;
    }
  return set_error(e);
}
// Work on the legacy null stream would wait for every blocking stream, a capturing one included: CUDA refuses it
// (cudaErrorStreamCaptureImplicit) and invalidates those captures.
inline cudaError_t legacy_stream_use() {
  std::lock_guard<std::recursive_mutex> lock(stream_mutex);
  cudaError_t e = cudaSuccess;
  for (EmuStream* s : live_streams)
    if (s->capture && s->blocking) {
      invalidate(s, cudaErrorStreamCaptureImplicit);
      e = cudaErrorStreamCaptureImplicit;
    }
  return set_error(e);
}
// Something CUDA forbids on the capturing stream `s` itself (a synchronisation, a pageable copy): the error, and
// the capture is invalidated.
inline cudaError_t forbidden_on(EmuStream* s, cudaError_t why = cudaErrorStreamCaptureUnsupported) {
  std::lock_guard<std::recursive_mutex> lock(stream_mutex);
  invalidate(s, why);
  return set_error(why);
}

inline void run_until(EmuStream* s, uint64_t upto) {
  std::lock_guard<std::recursive_mutex> lock(stream_mutex);
  while (s->ran < upto && !s->pending.empty()) {
    std::function<void()> op = std::move(s->pending.front());
    s->pending.pop_front();
    op();
    s->ran++;
  }
}
inline void drain(EmuStream* s) { run_until(s, s->queued); }
// What work on the legacy default stream waits for first: every blocking stream's queue.
inline void drain_blocking() {
  std::lock_guard<std::recursive_mutex> lock(stream_mutex);
  for (EmuStream* s : live_streams)
    if (s->blocking) drain(s);
}
inline void drain_all() {
  std::lock_guard<std::recursive_mutex> lock(stream_mutex);
  for (EmuStream* s : live_streams) drain(s);
}
// Called before a kernel launch on `s`: the work queued before it has run (on its stream; the null stream's
// launches also after the blocking streams).
inline void before_launch(cudaStream_t s) {
  if (EmuStream* st = stream_of(s)) drain(st);
  else drain_blocking();
}

// Queue `op` on a created stream (record it, while the stream captures), or run it now on the null stream (after
// the blocking streams' work). Errors: the capture was invalidated before, or null-stream work during a capture.
inline cudaError_t submit(cudaStream_t s, std::function<void()> op) {
  std::lock_guard<std::recursive_mutex> lock(stream_mutex);
  if (EmuStream* st = stream_of(s)) {
    if (st->capture) {
      if (st->capture_error != cudaSuccess) return set_error(cudaErrorStreamCaptureInvalidated);
      st->capture->nodes.push_back(std::move(op));
      return cudaSuccess;
    }
    st->pending.push_back(std::move(op));
    st->queued++;
    return cudaSuccess;
  }
  if (const cudaError_t e = legacy_stream_use()) return e;
  drain_blocking();
  op();
  return cudaSuccess;
}
// A kernel launch on `s`: recorded while `s` captures, else run now after the work queued before it (on its
// stream; the null stream's launches also after the blocking streams' work).
inline cudaError_t launch(cudaStream_t s, const std::function<void()>& run) {
  {
    std::lock_guard<std::recursive_mutex> lock(stream_mutex);
    EmuStream* st = stream_of(s);
    if (st && st->capture) return submit(s, run);
    if (!st)
      if (const cudaError_t e = legacy_stream_use()) return e;
  }
  before_launch(s);
  run();
  return cudaSuccess;
}

inline bool is_pinned(const void* p, size_t bytes) {
  const char* c = static_cast<const char*>(p);
  std::lock_guard<std::recursive_mutex> lock(stream_mutex);
  auto it = pinned.upper_bound(c);
  if (it == pinned.begin()) return false;
  --it;
  return c >= it->first && c + bytes <= it->first + it->second;
}

}  // namespace cudaemu

inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned int flags) {
  auto* st = new cudaemu::EmuStream;
  st->blocking = (flags & cudaStreamNonBlocking) == 0;
  std::lock_guard<std::recursive_mutex> lock(cudaemu::stream_mutex);
  cudaemu::live_streams.insert(st);
  *s = reinterpret_cast<cudaStream_t>(st);
  return cudaSuccess;
}
inline cudaError_t cudaStreamCreate(cudaStream_t* s) { return cudaStreamCreateWithFlags(s, cudaStreamDefault); }
// The queued work still runs (CUDA: destroy returns at once, the resources go once the work is done).
inline cudaError_t cudaStreamDestroy(cudaStream_t s) {
  std::lock_guard<std::recursive_mutex> lock(cudaemu::stream_mutex);
  cudaemu::EmuStream* st = cudaemu::stream_of(s);
  if (!st) return cudaemu::set_error(cudaErrorInvalidValue);
  if (st->capture) return cudaemu::forbidden_on(st, cudaErrorStreamCaptureUnsupported);
  cudaemu::drain(st);
  cudaemu::live_streams.erase(st);
  delete st;
  return cudaSuccess;
}
inline cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  cudaemu::EmuStream* st = cudaemu::stream_of(s);
  if (st && st->capture) return cudaemu::forbidden_on(st);
  if (!st)
    if (const cudaError_t e = cudaemu::legacy_stream_use()) return e;
  if (st) cudaemu::drain(st);
  return cudaSuccess;
}
inline cudaError_t cudaDeviceSynchronize() {
  if (const cudaError_t e = cudaemu::capture_forbidden()) return e;
  cudaemu::drain_all();
  return cudaSuccess;
}

inline cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned int) {
  auto* ev = new cudaemu::EmuEvent;
  std::lock_guard<std::recursive_mutex> lock(cudaemu::stream_mutex);
  cudaemu::live_events.insert(ev);
  *e = reinterpret_cast<cudaEvent_t>(ev);
  return cudaSuccess;
}
inline cudaError_t cudaEventCreate(cudaEvent_t* e) { return cudaEventCreateWithFlags(e, 0); }
inline cudaemu::EmuEvent* emu_event(cudaEvent_t e) {
  auto* ev = reinterpret_cast<cudaemu::EmuEvent*>(e);
  std::lock_guard<std::recursive_mutex> lock(cudaemu::stream_mutex);
  return ev && cudaemu::live_events.count(ev) ? ev : nullptr;
}
inline cudaError_t cudaEventDestroy(cudaEvent_t e) {
  std::lock_guard<std::recursive_mutex> lock(cudaemu::stream_mutex);
  cudaemu::EmuEvent* ev = emu_event(e);
  if (!ev) return cudaemu::set_error(cudaErrorInvalidValue);
  cudaemu::live_events.erase(ev);
  delete ev;
  return cudaSuccess;
}
inline cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
  std::lock_guard<std::recursive_mutex> lock(cudaemu::stream_mutex);
  cudaemu::EmuEvent* ev = emu_event(e);
  if (!ev) return cudaemu::set_error(cudaErrorInvalidValue);
  cudaemu::EmuStream* st = cudaemu::stream_of(s);
  if (!st)
    if (const cudaError_t err = cudaemu::legacy_stream_use()) return err;
  ev->stream = st;
  ev->upto = st ? st->queued : 0;
  ev->capture_id = st && st->capture ? st->capture_id : 0;  // a node of the graph: no point of the stream
  return cudaSuccess;
}
// An event last recorded in a capture that is still going on is a graph node, not a point in time:
// cudaErrorCapturedEvent, and (global mode) the capture is invalidated.
inline cudaError_t emu_captured_event(cudaemu::EmuEvent* ev) {
  if (!ev->capture_id) return cudaSuccess;
  for (cudaemu::EmuStream* s : cudaemu::live_streams)
    if (s->capture && s->capture_id == ev->capture_id) return cudaemu::forbidden_on(s, cudaErrorCapturedEvent);
  return cudaSuccess;
}
inline cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  std::lock_guard<std::recursive_mutex> lock(cudaemu::stream_mutex);
  cudaemu::EmuEvent* ev = emu_event(e);
  if (!ev) return cudaemu::set_error(cudaErrorInvalidValue);
  if (const cudaError_t err = emu_captured_event(ev)) return err;
  if (ev->stream && cudaemu::live_streams.count(ev->stream)) cudaemu::run_until(ev->stream, ev->upto);
  return cudaSuccess;
}
// Complete when its work has run; the emulator runs it now (a legal order) and answers cudaSuccess.
inline cudaError_t cudaEventQuery(cudaEvent_t e) { return cudaEventSynchronize(e); }
// Work queued on `s` after this call must follow the event: running the event's work now is a legal order.
inline cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned int) {
  std::lock_guard<std::recursive_mutex> lock(cudaemu::stream_mutex);
  cudaemu::EmuEvent* ev = emu_event(e);
  if (!ev) return cudaemu::set_error(cudaErrorInvalidValue);
  cudaemu::EmuStream* st = cudaemu::stream_of(s);
  if (st && st->capture) {  // one-stream captures only: an event of this same capture is already ordered
    if (ev->capture_id == st->capture_id) return cudaSuccess;
    return cudaemu::forbidden_on(st, cudaErrorStreamCaptureIsolation);  // outside work would not be in the graph
  }
  if (const cudaError_t err = emu_captured_event(ev)) return err;  // a fork into the capture: not emulated
  // whatever s queues from now on runs after this call, so after the event's work
  if (ev->stream && cudaemu::live_streams.count(ev->stream)) cudaemu::run_until(ev->stream, ev->upto);
  return cudaSuccess;
}

// Page-locked host memory: plain host memory, remembered so copies from / to it follow the pinned rules.
// VREFLECT_CUDA_EMU_NO_PINNED=1 makes cudaHostAlloc fail (out of memory), so the callers' pageable fallback can be
// tested.
inline cudaError_t cudaHostAlloc(void** p, size_t bytes, unsigned int) {
  const char* no = std::getenv("VREFLECT_CUDA_EMU_NO_PINNED");
  *p = nullptr;
  if (!(no && *no && *no != '0') && posix_memalign(p, 4096, bytes ? bytes : 1) != 0) *p = nullptr;
  if (!*p) return cudaemu::set_error(cudaErrorMemoryAllocation);
  std::lock_guard<std::recursive_mutex> lock(cudaemu::stream_mutex);
  cudaemu::pinned[static_cast<const char*>(*p)] = bytes ? bytes : 1;
  return cudaSuccess;
}
inline cudaError_t cudaMallocHost(void** p, size_t bytes) { return cudaHostAlloc(p, bytes, 0); }
// Synchronises (as CUDA's): queued copies from / to the block run first.
inline cudaError_t cudaFreeHost(void* p) {
  if (!p) return cudaSuccess;
  if (const cudaError_t e = cudaemu::capture_forbidden()) return e;
  {
    std::lock_guard<std::recursive_mutex> lock(cudaemu::stream_mutex);
    cudaemu::drain_all();
    cudaemu::pinned.erase(static_cast<const char*>(p));
  }
  std::free(p);
  return cudaSuccess;
}

inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                                   cudaStream_t s) {
  if (bytes == 0) return cudaSuccess;
  cudaemu::EmuStream* st = cudaemu::stream_of(s);
  if (!st) {  // the null stream: in order after the blocking streams, now
    if (const cudaError_t e = cudaemu::legacy_stream_use()) return e;
    cudaemu::drain_blocking();
    std::memmove(dst, src, bytes);
    return cudaSuccess;
  }
  // Which side is host memory: the kind when it says, else (cudaMemcpyDefault) whichever is not a device pointer;
  // device memory here is host memory too, so an unspecified kind is taken as device-to-device.
  const bool from_host = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyHostToHost;
  const bool to_host = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyHostToHost;
  // A capture records pinned and device copies only: a pageable one would be synchronous or read the host now.
  if (st->capture && ((to_host && !cudaemu::is_pinned(dst, bytes)) || (from_host && !cudaemu::is_pinned(src, bytes))))
    return cudaemu::forbidden_on(st);
  if (to_host && !cudaemu::is_pinned(dst, bytes)) {  // to pageable memory: synchronous
    cudaemu::drain(st);
    std::memmove(dst, src, bytes);
    return cudaSuccess;
  }
  if (from_host && !cudaemu::is_pinned(src, bytes)) {  // from pageable memory: taken now, lands later
    auto copy = std::make_shared<std::vector<char>>(static_cast<const char*>(src), static_cast<const char*>(src) + bytes);
    return cudaemu::submit(s, [dst, copy] { std::memcpy(dst, copy->data(), copy->size()); });
  }
  return cudaemu::submit(s, [dst, src, bytes] { std::memmove(dst, src, bytes); });
}
inline cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  return cudaMemcpyAsync(dst, src, bytes, kind, nullptr);
}
inline cudaError_t cudaMemsetAsync(void* p, int v, size_t bytes, cudaStream_t s) {
  return bytes ? cudaemu::submit(s, [p, v, bytes] { std::memset(p, v, bytes); }) : cudaSuccess;
}
inline cudaError_t cudaMemset(void* p, int v, size_t bytes) { return cudaMemsetAsync(p, v, bytes, nullptr); }
