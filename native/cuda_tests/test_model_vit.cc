// The CUDA vision tower (cuda/model/gpu_vision_tower) on the tiny golden checkpoint (tiny-flat: 4 blocks of width
// 32, 2 heads of 16, full attention in blocks 1 and 3, window 112 px = 4 x 4 merged tokens), through the emulator:
// two images in one batch, one spanning several windows (partial ones at the right and bottom edges), so the
// window order, the per-image full-attention segments and the restored raster order all matter. Reference: the
// CPU VisionTower in fp32; baseline: the same with BF16 GEMM weights; the flash-attention rule on the features.
#include <string>
#include <vector>

#include "cuda/model/device_weights.h"
#include "cuda/model/gpu_vision_tower.h"
#include "cuda_tests/device_buffer.h"
#include "cuda_tests/model_fixture.h"
#include "model/vision_tower.h"
#include "tests/harness.h"

namespace vr::test {

VR_TEST(cuda_model_vit_features) {
  const ModelConfig mc = tiny_flat_config(DType::BF16);
  WeightStore ws(safetensors_records(tiny_flat_dir() + "/model.safetensors"));
  // 10 x 14 patches = 5 x 7 merged tokens: windows of 4x4, 4x3, 1x4, 1x3; then an 8 x 6 image (one window).
  const std::vector<ImageGrid> grids = {ImageGrid{1, 10, 14}, ImageGrid{1, 8, 6}};
  int64_t Np = 0;
  for (const ImageGrid& g : grids) Np += g.patches();
  const int64_t Nt = Np / 4, O = mc.vision.out_hidden;
  Rng rng(77);
  const std::vector<float> px = rng.vec(static_cast<size_t>(Np * mc.vision.patch_dim()), -1.8, 2.1);

  std::vector<float> ref, base;
  VisionTower(mc.vision, ws, DType::F32).forward(px.data(), grids, ref);
  VisionTower(mc.vision, ws, DType::BF16).forward(px.data(), grids, base);
  const cuda::DeviceWeights dw(mc, ws);
  cuda::GpuVisionTower vit(dw);
  DeviceBuffer<float> feats(static_cast<size_t>(Nt * O));
  vit.forward(feats.get(), px.data(), grids);
  const std::vector<float> got = feats.download();
  const std::vector<double> ref64 = to_double(ref);
  check_rule("cuda vision tower tiny-flat, images 10x14 + 8x6 patches: features [" + std::to_string(Nt) + ", " +
                 std::to_string(O) + "]",
             got.data(), base.data(), ref64.data(), ref64.size(), 1e-3);
  expect_throw("cuda vision tower: a grid that is not a multiple of the merge size",
               [&] { vit.forward(feats.get(), px.data(), {ImageGrid{1, 7, 6}}); });
}

}  // namespace vr::test
