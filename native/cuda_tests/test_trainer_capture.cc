// The CUDA trainer's attention-map capture (GpuTrainer::forward_backward with an AttentionCapture: the maps behind
// `train-stage1|2 --device cuda --attention-maps`) against the CPU Trainer's, on golden micro-batches
// (test/golden_train, golden_train_case.h) chosen for their padding: stage1_packed step 1 (4 boxes of 4, 1, 4, 4
// tokens over 3 samples: the GPU's teacher map is padded to the largest box) and stage2_packed step 2's second
// micro-batch (3 boxes over samples of 16 and 6 tokens: the student map is padded to the largest sample).
//
// Reference: the CPU Trainer in fp32 (its capture is checked against PyTorch's KL by
// test/unit/train/attention_capture.test.ts). Baseline: the CPU Trainer with bf16 compute. Per box and map the
// training tests' flash rule (train_checks.h): max|gpu - ref| <= 2 max|cpu_bf16 - ref| + 1e-3 max|ref|; the
// record's tables (box, sample, first image, grid, tokens, box tokens) equal the CPU's exactly, the teacher is 0
// outside its box, every row a distribution. Then the request rules: max_boxes takes the first boxes (the same
// values as a full capture), capturing changes no loss, and a step without a request keeps nothing extra on the
// device (stage 1 allocates no teacher map at all).
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "cuda/model/cuda_runtime.h"
#include "cuda/model/device_arena.h"
#include "cuda/model/gpu_trainer.h"
#include "cuda_tests/golden_train_case.h"
#include "cuda_tests/model_fixture.h"
#include "cuda_tests/train_checks.h"
#include "tests/harness.h"
#include "train/trainer.h"

namespace vr::test {
namespace {

struct CaptureCase {
  const char* name;
  size_t step, micro;
};
constexpr CaptureCase kStage1{"stage1_packed", 0, 0};
constexpr CaptureCase kStage2{"stage2_packed", 1, 1};

struct Captured {
  StepLosses losses;
  std::vector<BoxAttention> boxes;
};

template <class T>
Captured capture_step(T& t, const TrainBatch& b, int64_t max_boxes = -1) {
  AttentionCapture c;
  c.max_boxes = max_boxes;
  Captured out;
  out.losses = t.forward_backward(b, 1.0, &c);
  out.boxes = std::move(c.boxes);
  return out;
}

Captured cpu_capture(const CaptureCase& cc, DType compute) {
  const GoldenCase& g = golden_case(cc.name);
  Trainer t(tiny_flat_config(compute), g.records, golden_trainer_config(g));
  return capture_step(t, golden_micro_batch(g, cc.step, cc.micro));
}

// Every row of a [K, S] map sums to 1 (over `cols` when given: the teacher's box tokens), and the map is exactly 0
// outside those columns.
bool distribution_rows(const std::vector<float>& m, int64_t K, int64_t S, const std::vector<int32_t>* cols) {
  std::vector<uint8_t> in(size_t(S), cols ? 0 : 1);
  if (cols)
    for (int32_t c : *cols) in[size_t(c)] = 1;
  for (int64_t q = 0; q < K; q++) {
    double sum = 0;
    for (int64_t s = 0; s < S; s++) {
      const float v = m[size_t(q * S + s)];
      if (!in[size_t(s)] && v != 0.f) return false;
      if (!(v >= 0.f)) return false;
      sum += v;
    }
    if (std::fabs(sum - 1) > 1e-4) return false;
  }
  return true;
}

void compare_capture(const CaptureCase& cc, const Captured& gpu, const Captured& ref, const Captured& base) {
  const GoldenCase& g = golden_case(cc.name);
  const TrainBatch b = golden_micro_batch(g, cc.step, cc.micro);
  const bool stage2 = golden_trainer_config(g).stage == 2;
  const int64_t K = golden_trainer_config(g).latent_count;
  const std::string tag = std::string("cuda capture ") + cc.name + " step " + std::to_string(cc.step + 1) +
                          " micro " + std::to_string(cc.micro);
  if (!check_true(tag + ": every box captured (" + std::to_string(gpu.boxes.size()) + " of " +
                      std::to_string(b.boxes()) + "), as the CPU",
                  int64_t(gpu.boxes.size()) == b.boxes() && ref.boxes.size() == gpu.boxes.size() &&
                      base.boxes.size() == gpu.boxes.size()))
    return;
  for (size_t i = 0; i < gpu.boxes.size(); i++) {
    const BoxAttention &a = gpu.boxes[i], &r = ref.boxes[i], &n = base.boxes[i];
    const std::string w = tag + " box " + std::to_string(i) + " (sample " + std::to_string(r.sample) + ", " +
                          std::to_string(r.box_tokens.size()) + " of " + std::to_string(r.tokens) + " tokens)";
    check_true(w + ": box, sample, image, grid, tokens and box tokens equal the CPU's",
               a.box == r.box && a.sample == r.sample && a.image == r.image && a.grid.t == r.grid.t &&
                   a.grid.h == r.grid.h && a.grid.w == r.grid.w && a.tokens == r.tokens &&
                   a.box_tokens == r.box_tokens && a.teacher.size() == size_t(K * r.tokens));
    check_true(w + ": teacher rows are distributions over the box's tokens, 0 elsewhere",
               distribution_rows(a.teacher, K, a.tokens, &a.box_tokens));
    check_tensor(w + " teacher map", a.teacher, n.teacher, r.teacher);
    if (!stage2) {
      check_true(w + ": no student map in stage 1", a.student.empty() && r.student.empty());
      continue;
    }
    if (!check_true(w + ": student map [K, S]", a.student.size() == size_t(K * r.tokens) &&
                                                   r.student.size() == a.student.size()))
      continue;
    check_true(w + ": student rows are distributions over the sample's tokens",
               distribution_rows(a.student, K, a.tokens, nullptr));
    check_tensor(w + " student map", a.student, n.student, r.student);
  }
}

// The live device bytes of the emulator (every cudaMalloc not yet freed); -1 on a real GPU, where the check below
// is skipped.
int64_t live_device_bytes() {
#if defined(VR_CUDA_EMULATED)
  return int64_t(cudaemu::live_bytes);
#else
  return -1;
#endif
}

bool same_box(const BoxAttention& a, const BoxAttention& b) {
  return a.box == b.box && a.sample == b.sample && a.image == b.image && a.tokens == b.tokens &&
         a.box_tokens == b.box_tokens && a.teacher == b.teacher && a.student == b.student;
}

// On the GPU trainer that just made the full capture `all` of the case's batch (no optimizer step since, so the
// weights are the same): a capture of the first two boxes, then a step without a request.
void check_request_rules(const CaptureCase& cc, cuda::GpuTrainer& t, const Captured& all) {
  const GoldenCase& g = golden_case(cc.name);
  const TrainerConfig tc = golden_trainer_config(g);
  const TrainBatch b = golden_micro_batch(g, cc.step, cc.micro);
  const std::string tag = std::string("cuda capture ") + cc.name + ": ";
  const int64_t live_on = live_device_bytes();
  const Captured two = capture_step(t, b, 2);
  check_true(tag + "max_boxes 2 gives the first 2 boxes, equal to the full capture's",
             two.boxes.size() == 2 && all.boxes.size() >= 2 && same_box(two.boxes[0], all.boxes[0]) &&
                 same_box(two.boxes[1], all.boxes[1]));
  const StepLosses off = t.forward_backward(b, 1.0);
  const int64_t live_off = live_device_bytes();
  check_true(tag + "capturing changes no loss (" + std::to_string(off.loss) + ", kl " + std::to_string(off.loss_kl) +
                 ")",
             off.loss == all.losses.loss && off.loss_ce == all.losses.loss_ce &&
                 off.loss_resampler == all.losses.loss_resampler && off.loss_mse == all.losses.loss_mse &&
                 off.loss_kl == all.losses.loss_kl && two.losses.loss == all.losses.loss);
  if (live_on < 0) return;
  // Stage 1 keeps the BCM's padded map [B, K, max box] only for a capture (the step arena's one piece: rounded
  // to the arena's alignment; under AddressSanitizer's piece-per-allocation the arena's rounded span is still
  // allocated beside the piece's own exact allocation, so both count); stage 2 needs it anyway.
  int64_t nmax = 0;
  for (int64_t i = 0; i < b.boxes(); i++) nmax = std::max<int64_t>(nmax, b.cu_box_tokens[i + 1] - b.cu_box_tokens[i]);
  const size_t map = size_t(b.boxes() * tc.latent_count * nmax) * sizeof(float);
  const int64_t want = tc.stage == 1 ? int64_t(map) : 0;
  const int64_t want_rounded = tc.stage == 1 ? int64_t(cuda::DeviceArena::round_up(map)) : 0;
  check_true(tag + "a step without a capture keeps " + std::to_string(live_on - live_off) +
                 " device bytes less than one with (expected " + std::to_string(want_rounded) + ")",
             live_on - live_off == want_rounded || live_on - live_off == want + want_rounded);
}

}  // namespace

// Stage 1 and stage 2: the GPU's records against the CPU's, then the request rules on the same GPU trainer.
VR_TEST(cuda_trainer_capture) {
  for (const CaptureCase& cc : {kStage1, kStage2}) {
    const GoldenCase& g = golden_case(cc.name);
    const Captured ref = cpu_capture(cc, DType::F32);
    const Captured base = cpu_capture(cc, DType::BF16);
    cuda::GpuTrainer t(tiny_flat_config(DType::F32), g.records, golden_trainer_config(g));
    const Captured gpu = capture_step(t, golden_micro_batch(g, cc.step, cc.micro));
    compare_capture(cc, gpu, ref, base);
    check_request_rules(cc, t, gpu);
  }
}

}  // namespace vr::test
