// Attention op: checks the parameters and segment tables, then runs the backend (CPU for now).
#include "ops/attention.h"

#include "core/error.h"
#include "core/parallel.h"
#include "cpu/cpu_ops.h"

namespace vr {

namespace {
void check_params(const AttnParams& p, const char* op) {
  VR_CHECK(p.Hq > 0 && p.Hkv > 0 && p.D > 0, op, ": bad head shape Hq=", p.Hq, " Hkv=", p.Hkv, " D=", p.D);
  VR_CHECK(p.Hq % p.Hkv == 0, op, ": Hq=", p.Hq, " is not a multiple of Hkv=", p.Hkv);
  VR_CHECK(p.nseq >= 0, op, ": negative segment count ", p.nseq);
  VR_CHECK(p.cu_q && p.cu_k, op, ": cu_q / cu_k are null");
  VR_CHECK(p.q_stride >= int64_t(p.Hq) * p.D && p.o_stride >= int64_t(p.Hq) * p.D, op,
           ": q/out row stride smaller than Hq*D=", int64_t(p.Hq) * p.D);
  VR_CHECK(p.k_stride >= int64_t(p.Hkv) * p.D && p.v_stride >= int64_t(p.Hkv) * p.D, op,
           ": k/v row stride smaller than Hkv*D=", int64_t(p.Hkv) * p.D);
  VR_CHECK(p.cu_q[0] >= 0 && p.cu_k[0] >= 0, op, ": negative segment offset");
  for (int s = 0; s < p.nseq; s++) {
    VR_CHECK(p.cu_q[s + 1] >= p.cu_q[s], op, ": cu_q decreases at segment ", s);
    VR_CHECK(p.cu_k[s + 1] >= p.cu_k[s], op, ": cu_k decreases at segment ", s);
  }
}
}  // namespace

void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                       const AttnParams& p) {
  check_params(p, "attention_forward");
  if (p.nseq == 0) return;
  VR_CHECK(out && q && k && v, "attention_forward: null q/k/v/out buffer");
  apply_num_threads();
  cpu::attention_forward(out, lse, q, k, v, p);
}

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* out,
                        const float* lse, const float* q, const float* k, const float* v,
                        const AttnParams& p) {
  check_params(p, "attention_backward");
  VR_CHECK(!p.bf16, "attention_backward: bf16 attention is forward-only (training runs the fp32 kernel)");
  if (p.nseq == 0) return;
  VR_CHECK(dout && out && lse && q && k && v, "attention_backward: null dout/out/lse/q/k/v buffer");
  apply_num_threads();
  cpu::attention_backward(dq, dk, dv, dout, out, lse, q, k, v, p);
}

}  // namespace vr
