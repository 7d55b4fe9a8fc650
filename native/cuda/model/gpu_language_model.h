// The Qwen2 decoder of Qwen2.5-VL on the CUDA backend: the GPU twin of model/language_model.h, same API shape
// (input embeddings in, post-norm hidden states out, a KV cache extended by each forward).
//
// Precision: the residual stream x is fp32 (as on the CPU); the operands of every GEMM and of attention are bf16
// (the normalised inputs, q/k/v, the attention output, the SwiGLU product), every GEMM accumulates in fp32, and
// the o / down projections add their fp32 result straight into x (GEMM with accumulate). The KV cache is bf16.
// Per layer: RMSNorm -> bf16, one fused q|k|v GEMM (+bias) -> M-RoPE on q and k in place -> KV append ->
// causal GQA flash attention over cache + new rows -> o GEMM += x -> RMSNorm -> gate, up GEMMs -> SwiGLU ->
// down GEMM += x. Then the final RMSNorm (fp32 out) and lm_head for the rows asked for.
//
// Decode attention: a forward of T <= kMaxDecodeRows rows after a cache of c keys with c + T >= split_kv_min_keys()
// runs attention_decode (split-KV: the keys over many blocks, one block per KV head serving its whole GQA group)
// instead of attention_forward, whose grid is then only ceil(T/16) x Hq blocks, each re-reading its KV head's cache.
// Both write the same out and lse (the latent steps' attention probe reads the lse either way). The threshold is
// kDefaultSplitKvMinKeys, or VREFLECT_SPLIT_KV_MIN_KEYS (0: every small-T forward; a huge value: never) read at
// construction, or set_split_kv_min_keys. The split count is attention_decode_splits(keys, Hkv, SMs) unless
// VREFLECT_SPLIT_KV_SPLITS (1..kMaxDecodeSplits) fixes it (tests, tuning on a GPU).
//
// Decode step for CUDA graphs (GpuSession): stage_decode (host half) + enqueue_decode (device half) are forward()
// split so the device half can be captured once and replayed per token. Nothing that changes from token to token
// is a kernel argument: the M-RoPE cos/sin rows, the segment bounds (cu_q / cu_k: attention reads its key count on
// the device) and the KV append row (kv_append_at) live in device scratch, copied in by the device half from a
// PINNED staging block that the host half fills. What the launches do bake in is the DecodePlan (rows, split-KV
// on/off and split count, the cache's storage): a caller replays a captured step only while the plan is equal.
//
// Not thread-safe: one model object owns the scratch of one forward at a time. The DeviceWeights must outlive it.
// Work is queued on the stream given at construction; the host-side tables are uploaded in stream order.
#pragma once
#include <cstdint>

#include "cuda/kernels/cuda_kernels.h"
#include "cuda/model/attention_probe.h"
#include "cuda/model/device_arena.h"
#include "cuda/model/device_weights.h"
#include "cuda/model/gpu_kv_cache.h"
#include "cuda/model/pinned_buffer.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

// From this many keys a decode forward uses split-KV attention: 512 keys is where attention_decode_splits starts
// cutting the keys (2 splits of 256); below it a split-KV call is one block per KV head plus a combine launch, and
// the flash kernel's 28 blocks (whose repeated K/V reads hit the L2 at that size) are as good. A guess until a GPU
// measures it: vreflect_cuda_bench --kernels attention_decode --decode-keys 256,512,1k,4k (kernels/README.md).
constexpr int64_t kDefaultSplitKvMinKeys = 512;

class GpuLanguageModel {
 public:
  explicit GpuLanguageModel(const DeviceWeights& w, Stream s = nullptr);
  const TextConfig& config() const { return tc_; }
  GpuKVCache new_cache(int64_t capacity) const { return GpuKVCache(tc_, capacity); }

  // x [T, D] fp32 (device) = rows ids[t] (device int32) of the table. With check_ids the ids are checked in
  // [0, vocab) first (one device -> host read: a one-line error naming the position); a decode loop feeding the
  // id greedy_next_token wrote skips it, so the id never makes a host round trip.
  void embed(float* x, const int32_t* ids, int64_t T, bool check_ids = true);
  // x [T, D] fp32 input embeddings (device) at M-RoPE positions pos3 (HOST, planes t/h/w plane_stride apart),
  // appended after the cache; writes the post-norm hidden states [T, D] fp32 (device) and extends the cache.
  // hidden may alias x. With a probe, the last row's attention probabilities over the probe's key range, averaged
  // over heads and layers, are written to probe->probs (the latent steps' attention capture).
  void forward(float* hidden, const float* x, int64_t T, const int64_t* pos3, int64_t plane_stride,
               GpuKVCache& cache, const DeviceAttnProbe* probe = nullptr);
  // logits [rows, vocab] fp32 (device) = hidden rows (fp32, device, rounded to bf16) @ lm_head^T.
  void logits(float* out, const float* hidden, int64_t rows);

  // What a decode step's launches bake in (see the top of this file).
  struct DecodePlan {
    int64_t rows = 0;
    bool split_kv = false;
    int splits = 0;
    const bf16* cache = nullptr;  // the KV cache's storage: a grown cache has new pointers
    int64_t capacity = 0;
    // Every other buffer a captured step bakes in: the activation scratch (regrown by a longer forward), the
    // split-KV workspace (regrown by a larger split count), the pinned staging block. Today none of them moves
    // within one generate() (where the graphs live), but a replay with a stale pointer would write freed memory,
    // so they are part of the key rather than an argument about call order.
    const void* scratch = nullptr;
    const float* workspace = nullptr;
    const void* staging = nullptr;
    bool same(const DecodePlan& o) const {
      return rows == o.rows && split_kv == o.split_kv && splits == o.splits && cache == o.cache &&
             capacity == o.capacity && scratch == o.scratch && workspace == o.workspace && staging == o.staging;
    }
  };
  // Host half of a forward of T <= kMaxDecodeRows rows at M-RoPE positions pos3 (HOST, as forward) after the
  // cache: checks the room, makes every allocation the step needs (scratch, split-KV workspace, staging: never
  // inside a capture), waits for this model's stream (the previous step's copies out of the staging block have
  // run), fills the staging block, and returns the plan. Counts a split-KV forward when the plan takes that path.
  DecodePlan stage_decode(const int64_t* pos3, int64_t T, int64_t plane_stride, const GpuKVCache& cache);
  // Device half, capturable: the staged block copied to the device, the layers, the final norm into hidden. The
  // host work is argument checks only; the cache is NOT advanced (the caller advances it by plan.rows for each
  // step that runs, replayed or not). plan must come from stage_decode with this cache.
  void enqueue_decode(float* hidden, const float* x, const DecodePlan& plan, GpuKVCache& cache,
                      const DeviceAttnProbe* probe = nullptr);
  Stream stream() const { return s_; }
  // Whether the staging block is page-locked (a capture cannot copy from pageable memory: the session then runs
  // eagerly). Known after the first stage_decode.
  bool staging_pinned() const { return staging_.pinned(); }

  // Device bytes of the activation scratch a call over `rows` tokens needs (embed, forward and logits all share
  // it), and what the model holds now: a chunked prefill sizes its chunks with these (GpuSession).
  size_t scratch_bytes(int64_t rows) const;
  size_t scratch_held() const { return scratch_.capacity(); }

  int64_t split_kv_min_keys() const { return split_kv_min_keys_; }
  void set_split_kv_min_keys(int64_t keys);
  // The split-KV workspace held now (grown to the largest decode forward so far: ~1 MB for the 7B at 17k keys).
  size_t decode_workspace_held() const { return decode_ws_.capacity(); }
  // Forwards, over all models of the process, that ran attention_decode (tests check the path was taken).
  static int64_t split_kv_forwards();

 private:
  // The activation buffers of one call, carved from one arena sized for `rows` tokens.
  struct Scratch {
    float* x = nullptr;  // the residual stream [rows, D]
    bf16 *h16 = nullptr, *qkv16 = nullptr, *att16 = nullptr, *g16 = nullptr, *u16 = nullptr;
    float *cos = nullptr, *sin = nullptr;
    float* lse = nullptr;    // [heads, rows]: the attention's log-sum-exp, written only for a probe
    int32_t* cu = nullptr;   // cu_q [2], cu_k [2], KV append row [1] (kBoundsInts, uploaded), first bad id [1]
  };
  static constexpr int kBoundsInts = 5;
  // The attention path of a forward of T rows after c keys (split-KV or not, split count), growing the split-KV
  // workspace; counts split-KV forwards.
  DecodePlan plan_attention(int64_t T, int64_t c);
  // The layers and the final norm over scratch already holding the tables and bounds (both halves' shared part).
  void run_layers(float* hidden, const float* x_in, int64_t T, int64_t keys, const DecodePlan& plan,
                  GpuKVCache& cache, const DeviceAttnProbe* probe);
  template <class Arena>
  static void carve(Arena& a, const TextConfig& tc, int64_t rows, Scratch& s);
  void reserve(int64_t rows);  // scratch for calls of up to `rows` tokens
  const DeviceWeights& w_;
  TextConfig tc_;
  Stream s_;
  DeviceArena scratch_;
  int64_t scratch_rows_ = 0;
  Scratch sc_;
  int64_t split_kv_min_keys_ = kDefaultSplitKvMinKeys;
  int split_kv_splits_ = 0;  // 0: attention_decode_splits
  int sms_ = 0;
  DeviceArena decode_ws_;  // attention_decode's partials (fp32), grown on demand
  float* decode_ws_ptr_ = nullptr;
  size_t decode_ws_floats_ = 0;
  PinnedBuffer staging_;  // stage_decode's block: cos [kMaxDecodeRows * hd], sin [same], bounds [kBoundsInts]
};

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
