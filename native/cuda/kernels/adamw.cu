// AdamW step with torch.optim.AdamW's maths (see cuda_kernels.h), elementwise over fp32 master weights and
// moments. Bias corrections are computed once on the host in double precision.
#include <cmath>

#include "cuda/kernels/common.cuh"
#include "cuda/kernels/elementwise_vec.cuh"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {

constexpr int kThreads = 256;

struct AdamWScalars {
  float a1, beta2, a2, eps;  // a1 = 1 - beta1, a2 = 1 - beta2 (rounded from double, as train/adamw.cc)
  float decay;               // 1 - lr * weight_decay
  float step_size;           // lr / (1 - beta1^t)
  float bc2_sqrt;            // sqrt(1 - beta2^t)
  float grad_scale;
};

// One element, the CPU AdamW's order of operations (train/adamw.cc adamw_sweep), so without FMA contraction the two
// agree bit for bit; shared by the scalar and the 16-byte kernels. p, m, v are updated in place.
__device__ __forceinline__ void adamw_element(float& p, float& m, float& v, float grad, const AdamWScalars& a) {
  const float g = grad * a.grad_scale;
  const float mi = m + a.a1 * (g - m);  // torch: exp_avg.lerp_(grad, 1 - beta1)
  const float vi = v * a.beta2 + a.a2 * g * g;
  p = p * a.decay - a.step_size * mi / (sqrtf(vi) / a.bc2_sqrt + a.eps);
  m = mi;
  v = vi;
}

// Element i in memory: the scalar kernel's body and the 16-byte kernel's n % 8 tail.
template <class G>
__device__ __forceinline__ void adamw_at(float* param, float* m, float* v, const G* grad, int64_t i,
                                         const AdamWScalars& a, __nv_bfloat16* param_bf16) {
  using namespace dev;
  float p = param[i], mi = m[i], vi = v[i];
  adamw_element(p, mi, vi, to_f32(grad[i]), a);
  m[i] = mi;
  v[i] = vi;
  param[i] = p;
  if (param_bf16) param_bf16[i] = __float2bfloat16(p);
}

template <class G>
__global__ void adamw_kernel(float* param, float* m, float* v, const G* grad, int64_t n, AdamWScalars a,
                             __nv_bfloat16* param_bf16) {
  using namespace dev;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    adamw_at(param, m, v, grad, i, a, param_bf16);
}

// The 16-byte path (float4 moves of param / m / v, 16-byte ones of a bf16 grad and copy): chunks of 8, then the
// n % 8 tail one element per thread.
template <class G>
__global__ void adamw_vec_kernel(float* param, float* m, float* v, const G* grad, int64_t n, AdamWScalars a,
                                 __nv_bfloat16* param_bf16) {
  using namespace dev;
  const int64_t chunks = n / vec::kN;
  for (int64_t k = vec::first(); k < chunks; k += vec::stride()) {
    const int64_t o = k * vec::kN;
    float p[vec::kN], mi[vec::kN], vi[vec::kN], g[vec::kN];
    vec::load8(param + o, p);
    vec::load8(m + o, mi);
    vec::load8(v + o, vi);
    vec::load8(grad + o, g);
    VR_UNROLL for (int j = 0; j < vec::kN; j++) adamw_element(p[j], mi[j], vi[j], g[j], a);
    vec::store8(m + o, mi);
    vec::store8(v + o, vi);
    vec::store8(param + o, p);
    if (param_bf16) vec::store8(param_bf16 + o, p);
  }
  const int64_t i = chunks * vec::kN + vec::first();
  if (i < n) adamw_at(param, m, v, grad, i, a, param_bf16);
}

template <class G, class S>
void run(float* param, float* m, float* v, const S* grad, int64_t n, const AdamWConfig& c, bf16* param_bf16,
         Stream s) {
  VR_CHECK(n >= 0, "cuda adamw_step: negative size ", n);
  VR_CHECK(c.step >= 1, "cuda adamw_step: step must be >= 1 (got ", c.step, ")");
  VR_CHECK(c.beta1 >= 0 && c.beta1 < 1 && c.beta2 >= 0 && c.beta2 < 1, "cuda adamw_step: betas must be in [0, 1)");
  if (n == 0) return;
  VR_CHECK(param && m && v && grad, "cuda adamw_step: param, m, v and grad are required");
  AdamWScalars a;
  a.a1 = float(1.0 - c.beta1);
  a.beta2 = float(c.beta2);
  a.a2 = float(1.0 - c.beta2);
  a.eps = float(c.eps);
  a.decay = float(1.0 - c.lr * c.weight_decay);
  a.step_size = float(c.lr / (1.0 - std::pow(c.beta1, double(c.step))));
  a.bc2_sqrt = float(std::sqrt(1.0 - std::pow(c.beta2, double(c.step))));
  a.grad_scale = c.grad_scale;
  if (vec::usable(param, m, v, grad, param_bf16)) {
    check_launch(cuda_launch(adamw_vec_kernel<G>, dim3(grid_for(n / vec::kN, kThreads)), dim3(kThreads), 0, s, param,
                             m, v, dptr(grad), n, a, dptr(param_bf16)),
                 "adamw_step (16-byte)");
    return;
  }
  check_launch(cuda_launch(adamw_kernel<G>, dim3(grid_for(n, kThreads)), dim3(kThreads), 0, s, param, m, v,
                           dptr(grad), n, a, dptr(param_bf16)),
               "adamw_step");
}

}  // namespace

void adamw_step(float* param, float* m, float* v, const float* grad, int64_t n, const AdamWConfig& cfg,
                bf16* param_bf16, Stream s) {
  run<float>(param, m, v, grad, n, cfg, param_bf16, s);
}
void adamw_step(float* param, float* m, float* v, const bf16* grad, int64_t n, const AdamWConfig& cfg,
                bf16* param_bf16, Stream s) {
  run<__nv_bfloat16>(param, m, v, grad, n, cfg, param_bf16, s);
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
