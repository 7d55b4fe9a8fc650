// The Qwen2.5-VL vision tower on the CUDA backend: the GPU twin of model/vision_tower.h.
//
// Patch embedding GEMM (fp32 out) -> rows permuted into window order on the device (scatter by the inverse of
// the CPU's vision_windows order) -> per block: RMSNorm -> bf16, qkv GEMM (+bias), 2-D RoPE on q and k in place,
// non-causal flash attention over the window segments (cu_window) or, in fullatt blocks, over whole images
// (cu_full), proj GEMM (+bias) += x, RMSNorm -> bf16, gate / up GEMMs (+bias), SwiGLU, down GEMM (+bias) += x
// -> merger: RMSNorm ln_q -> bf16, each 2x2 group's 4 adjacent rows read as one row, fc1 GEMM -> exact GELU ->
// fc2 GEMM (fp32) -> rows scattered back to raster order. The rotary tables and segment bounds are made on the
// host by model/rope_tables and model/vision_tower (the CPU code) and uploaded.
//
// Precision as in gpu_language_model.h: fp32 residual stream, bf16 GEMM / attention operands, fp32 accumulation.
#pragma once
#include <cstdint>
#include <vector>

#include "cuda/kernels/cuda_kernels.h"
#include "cuda/model/device_weights.h"
#include "model/rope_tables.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

class GpuVisionTower {
 public:
  explicit GpuVisionTower(const DeviceWeights& w, Stream s = nullptr);
  // pixel_values [Np, patch_dim] fp32 on the HOST (processor order) -> features [Np/4, out_hidden] fp32 on the
  // device, in raster order per image (the order of the <|image_pad|> tokens).
  void forward(float* features, const float* pixel_values, const std::vector<ImageGrid>& grids);
  // Device bytes of the last forward's activation arena (one arena per forward, freed when it returns): the
  // memory plan's "ViT activations" item (src/plan/gpu_memory.ts vitBytesPerPatch mirrors the buffer list).
  size_t last_scratch_bytes() const { return last_scratch_bytes_; }

 private:
  size_t last_scratch_bytes_ = 0;
  const DeviceWeights& w_;
  VisionConfig vc_;
  Stream s_;
};

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
