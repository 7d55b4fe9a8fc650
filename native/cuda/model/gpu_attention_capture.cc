#include "cuda/model/gpu_attention_capture.h"

#include <vector>

#include "core/error.h"
#include "cuda/model/device_arena.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

void capture_box_attention(const TrainBatch& b, int64_t K, const float* teacher, int64_t Nmax, const float* student,
                           int64_t Smax, AttentionCapture& out, Stream s) {
  out.boxes.clear();
  const int64_t n = captured_boxes(out, b.boxes());
  if (n <= 0) return;
  VR_CHECK(teacher, "cuda attention capture: the teacher's maps were not kept");
  std::vector<float> t(size_t(n * K * Nmax)), a(student ? size_t(n * K * Smax) : 0);
  copy_to_host(t.data(), teacher, t.size() * sizeof(float), "teacher attention maps", s);
  if (student) copy_to_host(a.data(), student, a.size() * sizeof(float), "student attention maps", s);
  for (int64_t box = 0; box < n; box++)
    out.boxes.push_back(box_attention(b, box, K, t.data() + box * K * Nmax, Nmax,
                                      student ? a.data() + box * K * Smax : nullptr, Smax));
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
