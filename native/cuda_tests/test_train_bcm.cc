// The CUDA BCM head (cuda/model/gpu_train_bcm) and the stage-1 latent loss on the device against the CPU
// BoxCompression (model/bcm) and train/latent_losses, through the emulator in CI. Random weights with the shapes
// of a tiny-flat-sized head (D 64, one head of 64, 8 queries); three boxes of 5, 17 and 11 visual rows (so two
// are padded to the longest) drawn from 40 rows of visual features; latent hidden states H random. Stage 1:
// L = align(H, Z) (symmetric MSE), dZ from its gradient, BCM backward. Compared: Z, the head-averaged attention,
// the loss value, every BCM gradient.
//
// Reference: the CPU head over an fp32 ParamStore; baseline: the same over a BF16 ParamStore (GEMM operands
// rounded to bf16, attention fp32). Rule per tensor, as test_train_llm.cc:
//   max|gpu - cpu_fp32| <= 2 * max|cpu_bf16 - cpu_fp32| + 1e-3 * max|cpu_fp32|
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "cuda/model/gpu_train_bcm.h"
#include "cuda/model/gpu_train_params.h"
#include "cuda_tests/device_buffer.h"
#include "cuda_tests/train_checks.h"
#include "model/bcm.h"
#include "tests/harness.h"
#include "train/latent_losses.h"
#include "train/param_store.h"

namespace vr::test {
namespace {

constexpr int64_t kD = 64, kRows = 40;
constexpr int kQueries = 8;
const char* const kPrefix = "box_feature_resampler.";

struct Inputs {
  std::vector<float> V, H;   // visual rows [kRows, D], latent hidden states [nb * nq, D]
  std::vector<int32_t> idx;  // box rows
  std::vector<int32_t> cu;   // [nb + 1]
  int64_t nb() const { return int64_t(cu.size()) - 1; }
};

Inputs make_inputs() {
  Rng rng(31);
  Inputs in;
  in.V = rng.vec(size_t(kRows * kD), -2, 2);
  in.cu = {0};
  for (int n : {5, 17, 11}) {
    for (int j = 0; j < n; j++) in.idx.push_back(int32_t(rng.next() % kRows));
    in.cu.push_back(int32_t(in.idx.size()));
  }
  in.H = rng.vec(size_t(in.nb() * kQueries * kD), -1, 1);
  return in;
}

// Every head tensor random (biases and LayerNorm affine too, so their gradients are tested), the same values in
// every store (tensors are declared in the same order).
void fill(ParamStore& ps) {
  Rng rng(5);
  for (const auto& p : ps.all()) {
    const std::string& n = p->name;
    const bool ln_w = n.find("output_norm.weight") != std::string::npos;
    const double lo = ln_w ? 0.5 : n.find("queries") != std::string::npos ? -1 : p->shape.size() == 2 ? -0.2 : -0.1;
    const double hi = ln_w ? 1.5 : -lo;
    for (int64_t i = 0; i < p->numel; i++) p->w[i] = float(rng.uniform(lo, hi));
  }
  ps.refresh_shadows();
}

struct Result {
  std::vector<float> Z, attn;  // attn in the GPU's padded layout [nb, nq, max_box]
  double loss = 0;
  GradMap grads;
};


Result run_cpu(DType compute, const Inputs& in, int64_t max_box) {
  ParamStore ps(compute);
  BoxCompression bcm(ps, kPrefix, kD, kQueries, true);
  ps.allocate();
  fill(ps);
  ps.zero_grad();
  const int64_t R = in.nb() * kQueries;
  Result r;
  r.Z.resize(size_t(R * kD));
  BcmCache cache;
  bcm.forward(in.V.data(), in.idx.data(), in.cu.data(), in.nb(), r.Z.data(), cache, /*want_attn=*/true);
  r.attn.assign(size_t(R * max_box), 0.f);  // the CPU's per-box [nq, N_b] maps, padded to the GPU's layout
  for (int64_t b = 0; b < in.nb(); b++) {
    const int64_t N = in.cu[b + 1] - in.cu[b];
    for (int64_t q = 0; q < kQueries; q++)
      for (int64_t j = 0; j < N; j++)
        r.attn[size_t((b * kQueries + q) * max_box + j)] = cache.ca.attn[size_t(cache.ca.attn_off[b] + q * N + j)];
  }
  r.loss = align_value(in.H.data(), r.Z.data(), R * kD);
  std::vector<float> dZ(r.Z.size(), 0.f);
  align_grad(in.H.data(), r.Z.data(), R * kD, 1.0f, nullptr, dZ.data());
  bcm.backward(cache, dZ.data());
  r.grads = trainable_grads(ps);
  return r;
}

Result run_gpu(const Inputs& in, cuda::OptimizerPlacement where, int64_t* max_box) {
  ParamStore ps(DType::F32);
  BoxCompression cpu(ps, kPrefix, kD, kQueries, true);  // registers the tensors; never run here
  ps.allocate();
  fill(ps);
  cuda::GpuTrainParams gp(ps, where);
  gp.upload();
  cuda::GpuBoxCompression bcm(gp, kPrefix, kD, kQueries);
  const int64_t R = in.nb() * kQueries;
  int64_t N = 0;
  for (int64_t b = 0; b < in.nb(); b++) N = std::max<int64_t>(N, in.cu[b + 1] - in.cu[b]);
  *max_box = N;
  DeviceBuffer<float> V(in.V), H(in.H), Z(size_t(R * kD)), dZ(size_t(R * kD)), attn(size_t(R * N));
  DeviceBuffer<cuda::LossValue> loss(1);
  bcm.forward(Z.get(), V.get(), kRows, in.idx.data(), in.cu.data(), in.nb(), attn.get());
  cuda::align_value(loss.get(), H.get(), Z.get(), R * kD);
  cuda_ok(cudaMemset(dZ.get(), 0, R * kD * sizeof(float)), "clear dZ");
  cuda::align_grad(static_cast<float*>(nullptr), dZ.get(), H.get(), Z.get(), R * kD, 1.0f);
  bcm.backward(dZ.get());
  Result r;
  r.Z = Z.download();
  r.attn = attn.download();
  r.loss = loss.download()[0].value;
  gp.download_grads();
  r.grads = trainable_grads(ps);
  return r;
}


}  // namespace

VR_TEST(cuda_train_bcm_stage1) {
  const Inputs in = make_inputs();
  int64_t N = 0;
  const Result gpu = run_gpu(in, cuda::OptimizerPlacement::Gpu, &N);
  const Result ref = run_cpu(DType::F32, in, N);
  const Result base = run_cpu(DType::BF16, in, N);
  const std::string tag = "cuda BCM D=64 nq=8 boxes 5/17/11";
  check_tensor(tag + " Z", gpu.Z, base.Z, ref.Z);
  check_tensor(tag + " head-averaged attention (padded layout, 0 on padding)", gpu.attn, base.attn, ref.attn);
  const std::vector<float> lg = {float(gpu.loss)}, lb = {float(base.loss)};
  const std::vector<float> lr = {float(ref.loss)};
  check_tensor(tag + " stage-1 align loss value", lg, lb, lr, 1e-5);
  for (const auto& [name, g] : ref.grads) check_tensor(tag + " grad " + name, gpu.grads.at(name), base.grads.at(name), g);
  const Result host = run_gpu(in, cuda::OptimizerPlacement::Host, &N);
  check_true(tag + " host placement: Z and attention equal the gpu placement's bit for bit",
             host.Z == gpu.Z && host.attn == gpu.attn);
}

VR_TEST(cuda_train_bcm_errors) {
  ParamStore ps(DType::F32);
  BoxCompression cpu(ps, kPrefix, kD, kQueries, true);
  ps.allocate();
  fill(ps);
  cuda::GpuTrainParams gp(ps, cuda::OptimizerPlacement::Gpu);
  gp.upload();
  cuda::GpuBoxCompression bcm(gp, kPrefix, kD, kQueries);
  DeviceBuffer<float> V(size_t(kRows * kD)), Z(size_t(2 * kQueries * kD));
  expect_throw("cuda BCM: backward before any forward", [&] { bcm.backward(Z.get()); });
  const std::vector<int32_t> idx = {1, 2, 3}, empty_cu = {0, 3, 3}, cu = {0, 1, 3}, bad_idx = {1, 40, 3};
  expect_throw("cuda BCM: an empty box", [&] { bcm.forward(Z.get(), V.get(), kRows, idx.data(), empty_cu.data(), 2); });
  expect_throw("cuda BCM: a box row outside the visual rows",
               [&] { bcm.forward(Z.get(), V.get(), kRows, bad_idx.data(), cu.data(), 2); });
  expect_throw("cuda BCM: unknown head prefix", [&] { cuda::GpuBoxCompression b(gp, "dac.", kD, kQueries); });
}

}  // namespace vr::test
