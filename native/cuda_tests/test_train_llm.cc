// The CUDA training decoder (cuda/model/gpu_train_llm) against the CPU TrainLLM (model/llm_train) on the tiny
// golden checkpoint (tiny-flat: hidden 64, 3 layers, 4 q / 2 kv heads of 16), through the emulator in CI.
// One packed batch of three samples (text; an image of 12 x 10 patches, so 3-D M-RoPE positions; text), causal
// attention inside each sample. Compared: the post-norm hidden states, the input-embedding gradient dx, and every
// decoder weight gradient by name (plus the embedding table's gradient from embed_backward).
//
// Reference: TrainLLM over an fp32 ParamStore (its ~1e-6 error stands in for fp64). Baseline: the same over a
// BF16 ParamStore - every GEMM operand rounded to bf16 (weights, normalised inputs, incoming gradients), fp32
// accumulation, attention and everything else fp32. That is the CPU trainer's own bf16 switch; the GPU rounds
// more (q/k/v, the attention output and dq/dk/dv are bf16 too), which the factor 2 absorbs. Rule, per tensor:
//   max|gpu - cpu_fp32| <= 2 * max|cpu_bf16 - cpu_fp32| + 1e-3 * max|cpu_fp32|
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "cuda/kernels/cuda_kernels.h"
#include "cuda/model/gpu_train_llm.h"
#include "cuda/model/gpu_train_params.h"
#include "cuda_tests/device_buffer.h"
#include "cuda_tests/train_checks.h"
#include "cuda_tests/model_fixture.h"
#include "cuda_tests/scoped_env.h"
#include "model/llm_train.h"
#include "model/rope_tables.h"
#include "tests/harness.h"
#include "train/adamw.h"
#include "train/param_store.h"

namespace vr::test {
namespace {

constexpr int32_t kImagePad = 372, kVisionStart = 369, kVisionEnd = 370;

struct Batch {
  std::vector<int32_t> ids;  // [T]
  std::vector<int32_t> pos;  // [3, T]
  std::vector<int32_t> cu;   // [nseq + 1]
  std::vector<float> x;      // [T, D] input embeddings
  std::vector<float> dhidden;
  int64_t T = 0;
  int nseq() const { return int(cu.size()) - 1; }
};

// Three samples; the middle one holds a 12 x 10-patch image (30 merged tokens). Each sample's positions are its own
// get_rope_index (as the trainer's batches), the image rows get random "visual features" as input embeddings.
Batch make_batch(const ModelConfig& mc, const TrainLLM& embedder) {
  Rng rng(7);
  auto text = [&](int n) {
    std::vector<int32_t> t;
    for (int i = 0; i < n; i++) t.push_back(int32_t(rng.next() % 360));
    return t;
  };
  const ImageGrid grid{1, 12, 10};
  std::vector<int32_t> s1 = text(5);
  s1.push_back(kVisionStart);
  s1.insert(s1.end(), size_t(grid.tokens()), kImagePad);
  s1.push_back(kVisionEnd);
  for (int32_t t : text(9)) s1.push_back(t);
  const std::vector<std::vector<int32_t>> samples = {text(13), s1, text(19)};
  Batch b;
  std::vector<std::vector<int64_t>> pos;
  b.cu = {0};
  for (const auto& s : samples) {
    std::vector<int64_t> p;
    const bool image = std::count(s.begin(), s.end(), kImagePad) > 0;
    mrope_positions(s.data(), int64_t(s.size()), image ? std::vector<ImageGrid>{grid} : std::vector<ImageGrid>{},
                    kImagePad, mc.vision.merge, p);
    pos.push_back(p);
    b.ids.insert(b.ids.end(), s.begin(), s.end());
    b.cu.push_back(int32_t(b.ids.size()));
  }
  b.T = int64_t(b.ids.size());
  b.pos.resize(size_t(3 * b.T));
  for (size_t si = 0, off = 0; si < samples.size(); off += samples[si].size(), si++)
    for (int plane = 0; plane < 3; plane++)
      for (size_t t = 0; t < samples[si].size(); t++)
        b.pos[size_t(plane) * size_t(b.T) + off + t] = int32_t(pos[si][size_t(plane) * samples[si].size() + t]);
  const int64_t D = mc.text.hidden;
  b.x.resize(size_t(b.T * D));
  embedder.embed(b.x.data(), b.ids.data(), b.T);
  for (int64_t t = 0; t < b.T; t++)
    if (b.ids[size_t(t)] == kImagePad)
      for (int64_t c = 0; c < D; c++) b.x[size_t(t * D + c)] = float(rng.uniform(-2, 2));
  b.dhidden = rng.vec(size_t(b.T * D), -1, 1);
  return b;
}

// One run's observable results: hidden states, dx, and each trainable tensor's gradient by name.
struct Result {
  std::vector<float> hidden, dx;
  GradMap grads;
};


Result run_cpu(const ModelConfig& mc, const WeightStore& ws, DType compute, const Batch& b, bool checkpointing = true) {
  ParamStore ps(compute);
  TrainLLM llm(mc.text, ps);
  llm.set_checkpointing(checkpointing);
  ps.allocate();
  llm.load(ws);
  ps.refresh_shadows();
  ps.zero_grad();
  Result r;
  const size_t TD = size_t(b.T * mc.text.hidden);
  r.hidden.resize(TD);
  r.dx.resize(TD);
  llm.forward(b.x.data(), b.T, b.pos.data(), b.cu.data(), b.nseq(), r.hidden.data());
  llm.backward(b.dhidden.data(), r.dx.data());
  llm.embed_backward(r.dx.data(), b.ids.data(), b.T);
  r.grads = trainable_grads(ps);
  return r;
}

Result run_gpu(const ModelConfig& mc, const WeightStore& ws, cuda::OptimizerPlacement where, const Batch& b,
               int64_t mlp_chunk, std::vector<float>* embedded = nullptr, bool checkpointing = true,
               size_t* scratch_bytes = nullptr) {
  ParamStore ps(DType::F32);
  TrainLLM cpu(mc.text, ps);  // registers the tensors under the checkpoint's names; its forward never runs here
  ps.allocate();
  cpu.load(ws);
  cuda::GpuTrainParams gp(ps, where, cuda::GpuTrainLLM::param_layout(mc.text));
  gp.upload();
  cuda::GpuTrainLLM llm(mc.text, gp);
  llm.set_mlp_chunk_rows(mlp_chunk);
  llm.set_checkpointing(checkpointing);
  const size_t TD = size_t(b.T * mc.text.hidden);
  DeviceBuffer<float> x(b.x), dh(b.dhidden), hidden(TD), dx(TD);
  DeviceBuffer<int32_t> ids(b.ids);
  if (embedded) {
    DeviceBuffer<float> e(TD);
    llm.embed(e.get(), ids.get(), b.T);
    *embedded = e.download();
  }
  llm.forward(hidden.get(), x.get(), b.T, b.pos.data(), b.cu.data(), b.nseq());
  llm.backward(dx.get(), dh.get());
  llm.embed_backward(dx.get(), ids.get(), b.T);
  Result r;
  r.hidden = hidden.download();
  r.dx = dx.download();
  gp.download_grads();
  r.grads = trainable_grads(ps);
  if (scratch_bytes) *scratch_bytes = llm.scratch_bytes();
  return r;
}

// The tiny-flat checkpoint and its packed test batch (embedded by a CPU TrainLLM), shared by the tests below.
struct TinyBatch {
  ModelConfig mc = tiny_flat_config(DType::F32);
  WeightStore ws{safetensors_records(tiny_flat_dir() + "/model.safetensors")};
  ParamStore ps0{DType::F32};
  TrainLLM embedder{mc.text, ps0};  // the CPU reference's embedding gather too
  Batch b;
  TinyBatch() {
    ps0.allocate();
    embedder.load(ws);
    b = make_batch(mc, embedder);
  }
};

}  // namespace

VR_TEST(cuda_train_llm_forward_backward) {
  const TinyBatch tiny;
  const ModelConfig& mc = tiny.mc;
  const WeightStore& ws = tiny.ws;
  const Batch& b = tiny.b;
  const TrainLLM& embedder = tiny.embedder;

  const Result ref = run_cpu(mc, ws, DType::F32, b);
  const Result base = run_cpu(mc, ws, DType::BF16, b);
  std::vector<float> embedded;
  const Result gpu = run_gpu(mc, ws, cuda::OptimizerPlacement::Gpu, b, /*mlp_chunk=*/32, &embedded);

  // The gather is exact: fp32 rows of the fp32 table (the image rows differ: make_batch overwrote them).
  std::vector<float> cpu_embedded(embedded.size());
  embedder.embed(cpu_embedded.data(), b.ids.data(), b.T);
  check_true("cuda train LLM: embed equals the CPU gather bit for bit", embedded == cpu_embedded);

  const std::string tag =
      "cuda train LLM tiny-flat T=" + std::to_string(b.T) + " (3 samples, one 12x10 image, MLP chunks of 32)";
  check_tensor(tag + " hidden", gpu.hidden, base.hidden, ref.hidden);
  check_tensor(tag + " dx", gpu.dx, base.dx, ref.dx);
  for (const auto& [name, g] : ref.grads) check_tensor(tag + " grad " + name, gpu.grads.at(name), base.grads.at(name), g);

  // The host placement keeps GEMM weights only as bf16 shadows on the device, and this run takes the MLP in one
  // pass instead of chunks of 32 rows: the same numbers. The forward is deterministic; gradients match up to the
  // summation order of the weight gradients (over chunks, and the RMSNorm / bias-gradient atomics).
  const Result host = run_gpu(mc, ws, cuda::OptimizerPlacement::Host, b, /*mlp_chunk=*/1024);
  check_true(tag + " host placement, MLP unchunked: hidden states equal the gpu placement's (chunks of 32) bit for bit",
             host.hidden == gpu.hidden);
  double worst = max_abs_diff(host.dx.data(), gpu.dx.data(), gpu.dx.size()) / max_abs(gpu.dx.data(), gpu.dx.size());
  std::string worst_name = "dx";
  for (const auto& [name, g] : gpu.grads) {
    const double scale = std::max(max_abs(g.data(), g.size()), 1e-30);
    const double d = max_abs_diff(host.grads.at(name).data(), g.data(), g.size()) / scale;
    if (d > worst) worst = d, worst_name = name;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2g", worst);
  check_true(tag + " host placement, MLP unchunked: dx and every gradient equal the gpu placement's up to summation order (worst " +
                 buf + " of max|g|, " + worst_name + ")",
             worst <= 1e-5);
}

// The same test with VREFLECT_ATTENTION=tc: the decoder's attention forward and backward on the tensor-core kernels
// (attention_tc.cu, the mma instruction modelled on the emulator; head dim 16 runs the 32-column tile), by the same
// rules against the CPU trainer.
VR_TEST(cuda_train_llm_tensor_core_attention) {
  ScopedEnv env("VREFLECT_ATTENTION", "tc", cuda::env_switches_changed);
  cuda_train_llm_forward_backward();
}

// And with VREFLECT_ATTENTION=wgmma: forward and backward on the Hopper wgmma kernels (attention_wgmma.cu,
// attention_wgmma_backward.cu; wgmma modelled on the emulator; head dim 16 padded to 128) - what auto picks on an
// H100 that passed the self-check - by the same rules. Skipped where no wgmma code runs (no sm_90a image).
VR_TEST(cuda_train_llm_wgmma_attention) {
  if (!cuda::wgmma_image_available()) {
    std::printf("  (skipped: no sm_90a wgmma code on this device / build)\n");
    return;
  }
  ScopedEnv env("VREFLECT_ATTENTION", "wgmma", cuda::env_switches_changed);
  cuda_train_llm_forward_backward();
}

// Checkpointing off (the forward keeps every layer's activations, the backward recomputes only the SwiGLU product)
// against on (the backward recomputes each layer): the kept tensors are the bits the recompute produces, so the
// hidden states, dx and every gradient a GEMM or a row kernel writes must be EQUAL, bit for bit. The RMSNorm weight
// gradients and the q|k|v bias gradient are sums of per-block partials added by atomics in block completion order
// (norm.cu, gemm.cu; the emulator runs blocks on several threads, as a GPU), so those equal up to summation order
// (<= 1e-6 of max|g|; two runs of the SAME mode differ the same way). Then off against the CPU TrainLLM with
// checkpointing off, by the bf16 rule of the test above. MLP chunks of 32 rows: the kept gate / up rows [T, F]
// are read at every chunk's offset.
VR_TEST(cuda_train_llm_no_checkpointing) {
  const TinyBatch tiny;
  const ModelConfig& mc = tiny.mc;
  const WeightStore& ws = tiny.ws;
  const Batch& b = tiny.b;
  size_t bytes_on = 0, bytes_off = 0;
  const Result on = run_gpu(mc, ws, cuda::OptimizerPlacement::Gpu, b, /*mlp_chunk=*/32, nullptr, true, &bytes_on);
  const Result off = run_gpu(mc, ws, cuda::OptimizerPlacement::Gpu, b, /*mlp_chunk=*/32, nullptr, false, &bytes_off);
  const std::string tag = "cuda train LLM tiny-flat T=" + std::to_string(b.T) + " checkpointing off vs on";
  check_true(tag + ": hidden states bit for bit", off.hidden == on.hidden);
  check_true(tag + ": dx bit for bit", off.dx == on.dx);
  auto by_atomics = [](const std::string& n) {
    return n.find("layernorm.weight") != std::string::npos || n == "model.norm.weight" ||
           n.find("_proj.bias") != std::string::npos;
  };
  int exact = 0, summed = 0;
  double worst = 0;
  std::string worst_name = "-";
  for (const auto& [name, g] : on.grads) {
    const std::vector<float>& h = off.grads.at(name);
    if (!by_atomics(name)) {
      exact++;
      check_true(tag + ": grad " + name + " bit for bit", h == g);
      continue;
    }
    summed++;
    const double d = max_abs_diff(h.data(), g.data(), g.size()) / std::max(max_abs(g.data(), g.size()), 1e-30);
    if (d > worst) worst = d, worst_name = name;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2g", worst);
  check_true(tag + ": " + std::to_string(summed) + " atomically summed gradients (norm weights, q|k|v biases) equal up to summation order (worst " +
                 buf + " of max|g|, " + worst_name + ")",
             summed == 3 * 5 + 1 && exact == 3 * 7 + 2 && worst <= 1e-6);
  check_true(tag + ": off keeps more (" + std::to_string(bytes_off) + " B) than on (" + std::to_string(bytes_on) + " B)",
             bytes_off > bytes_on && bytes_on > 0);

  const Result ref = run_cpu(mc, ws, DType::F32, b, /*checkpointing=*/false);
  const Result base = run_cpu(mc, ws, DType::BF16, b, /*checkpointing=*/false);
  const std::string vs = "cuda train LLM tiny-flat T=" + std::to_string(b.T) + " checkpointing off (CPU too)";
  check_tensor(vs + " hidden", off.hidden, base.hidden, ref.hidden);
  check_tensor(vs + " dx", off.dx, base.dx, ref.dx);
  for (const auto& [name, g] : ref.grads) check_tensor(vs + " grad " + name, off.grads.at(name), base.grads.at(name), g);
}

VR_TEST(cuda_train_llm_errors) {
  const ModelConfig mc = tiny_flat_config(DType::F32);
  const WeightStore ws(safetensors_records(tiny_flat_dir() + "/model.safetensors"));
  ParamStore ps(DType::F32);
  TrainLLM cpu(mc.text, ps);
  ps.allocate();
  cpu.load(ws);
  expect_throw("cuda train: unknown optimizer placement", [&] { cuda::optimizer_placement_from_name("cpu"); });
  expect_throw("cuda train: gpu-8bit is not a placement (considered, not built)",
               [&] { cuda::optimizer_placement_from_name("gpu-8bit"); });
  {
    ParamStore bare(DType::F32);
    TrainLLM layout(mc.text, bare);
    bare.allocate(cuda::host_storage(cuda::OptimizerPlacement::Gpu));  // weights only
    expect_throw("cuda train: host placement over a store without host moments",
                 [&] { cuda::GpuTrainParams gp(bare, cuda::OptimizerPlacement::Host); });
    expect_throw("cpu AdamW over a store without host gradients", [&] { adamw_update(bare, AdamWConfig{}, 1e-3, 1); });
    expect_throw("cpu gradient norm over a store without host gradients", [&] { grad_global_norm(bare); });
  }
  {
    cuda::GpuTrainParams unfused(ps, cuda::OptimizerPlacement::Gpu);
    expect_throw("cuda train LLM: q/k/v not fused on the device", [&] { cuda::GpuTrainLLM llm(mc.text, unfused); });
  }
  cuda::GpuTrainParams gp(ps, cuda::OptimizerPlacement::Gpu, cuda::GpuTrainLLM::param_layout(mc.text));
  gp.upload();
  cuda::GpuTrainLLM llm(mc.text, gp);
  DeviceBuffer<float> x(size_t(8 * mc.text.hidden));
  expect_throw("cuda train LLM: backward before any forward", [&] { llm.backward(x.get(), x.get()); });
  {
    const std::vector<int32_t> pos3(24, 0), cu = {0, 8};
    llm.forward(x.get(), x.get(), 8, pos3.data(), cu.data(), 1);
    llm.set_checkpointing(false);
    expect_throw("cuda train LLM: backward after a checkpointing change, before a new forward",
                 [&] { llm.backward(x.get(), x.get()); });
    llm.forward(x.get(), x.get(), 8, pos3.data(), cu.data(), 1);
    llm.backward(x.get(), x.get());  // the new mode's forward: fine
    llm.set_checkpointing(true);
  }
  const std::vector<int32_t> pos(24, 0), bad_cu = {0, 3, 3, 8}, short_cu = {0, 5};
  expect_throw("cuda train LLM: an empty sample", [&] { llm.forward(x.get(), x.get(), 8, pos.data(), bad_cu.data(), 3); });
  expect_throw("cuda train LLM: cu_seqlens not ending at T",
               [&] { llm.forward(x.get(), x.get(), 8, pos.data(), short_cu.data(), 1); });
  DeviceBuffer<int32_t> ids(std::vector<int32_t>{1, 2, 416});
  expect_throw("cuda train LLM: embedding an id outside the vocabulary", [&] { llm.embed(x.get(), ids.get(), 3); });
}

}  // namespace vr::test
