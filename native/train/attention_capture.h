// The --attention-maps capture of a training step (both trainers: train/trainer.h and the CUDA
// cuda/model/gpu_trainer.h): what is captured for one box, and the one routine that turns a box's head-averaged
// maps - wherever the trainer keeps them - into that record, so both backends fill it the same way.
#pragma once
#include <cstdint>
#include <vector>

#include "model/rope_tables.h"
#include "train/batch.h"

namespace vr {

// The attention maps the latent losses see for one box, captured on request (the --attention-maps pictures).
// Both maps are head-averaged, [K, S] row-major over the S visual tokens of the box's sample (all its images, in
// V order): the teacher's (BCM) map scattered from the box's tokens into those coordinates exactly as the KL
// scatters it (0 outside the box), and the student's (DAC, stage 2) map. The sample's first image owns columns
// [0, grid.h * grid.w / merge^2) in raster order over its merged grid.
struct BoxAttention {
  int64_t box = 0;                  // index of the box in the batch
  int sample = 0;                   // the sample that owns it
  int image = 0;                    // the sample's first image (index into the batch's images)
  ImageGrid grid;                   // that image's (t, h, w) in patches
  int64_t tokens = 0;               // S
  std::vector<int32_t> box_tokens;  // the box's token indices local to the sample (box_local_idx)
  std::vector<float> teacher;       // [K, S]
  std::vector<float> student;       // [K, S]; empty in stage 1 (no student)
};

// Opt-in capture for forward_backward: the first max_boxes boxes of the batch (< 0: every box). Costs one copy of
// the maps; without a capture request nothing extra is computed (stage 1 then skips the teacher's map too).
struct AttentionCapture {
  int64_t max_boxes = -1;
  std::vector<BoxAttention> boxes;  // filled by forward_backward
};

// How many of a batch's `boxes` boxes the request takes (the first ones).
int64_t captured_boxes(const AttentionCapture& c, int64_t boxes);

// Box `box` of batch b from its maps: the teacher's [K, N] over the box's N tokens (row q at At + q * t_stride) and,
// in stage 2, the student's [K, S] over its sample's S visual tokens (row q at A + q * a_stride; A null in stage 1).
// The strides let a trainer pass its padded layouts as they are. One-line errors for inconsistent tables.
BoxAttention box_attention(const TrainBatch& b, int64_t box, int64_t K, const float* At, int64_t t_stride,
                           const float* A, int64_t a_stride);

}  // namespace vr
