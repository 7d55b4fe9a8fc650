// The --attention-maps capture of the CUDA trainer (GpuTrainer::forward_backward with an AttentionCapture): the
// first boxes' head-averaged maps downloaded from the device buffers the step already has and turned into the
// CPU Trainer's BoxAttention records (train/attention_capture.h: same fields, box order and max_boxes rule).
#pragma once
#include <cstdint>

#include "cuda/kernels/cuda_kernels.h"
#include "train/attention_capture.h"
#include "train/batch.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

// teacher: the BCM's map [B, K, Nmax] (device; GpuBoxCompression's padded layout, Nmax = the largest box);
// student: stage 2's DAC map [B, K, Smax] (device; GpuDynamicCompression's layout, Smax = the largest box's
// sample) or null (stage 1). Replaces out.boxes; downloads only the captured boxes' rows (the first ones, so one
// contiguous copy per map), after the work queued on s.
void capture_box_attention(const TrainBatch& b, int64_t K, const float* teacher, int64_t Nmax, const float* student,
                           int64_t Smax, AttentionCapture& out, Stream s);

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
