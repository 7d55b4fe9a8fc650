// The latent losses of V-Reflection, values and gradients computed separately: the trainer needs every loss
// value before it knows the weights of the gradients (upstream clamps each component to [0, 100], and a clamp
// that saturates zeroes that term's gradient; method.md §10.1).
//
// Stage 1, symmetric decoupled alignment (§8.3): L = (MSE(sg Hc, Zc) + MSE(Hc, sg Zc)) / 2 with
// Hc = clamp(H, -1e4, 1e4), Zc = clamp(Z, -1e4, 1e4): value MSE(Hc, Zc); dH = w (Hc - Zc)/n, dZ = w (Zc - Hc)/n,
// each masked where its clamp saturates (torch's clamp passes gradient for lo <= x <= hi).
//
// Stage 2 (§9.3): MSE(Zs, sg Zt) and the attention-transfer KL
//   KL = sum_{b,q,s} T log T - T log(A + 1e-9)  / nb,   T[b, q, local_idx[b][j]] = At[b, q, j]
// (torch kl_div, reduction "batchmean"; terms with T = 0 are 0). dA = -w T / (A + 1e-9) / nb.
#pragma once
#include <cstdint>
#include <vector>

namespace vr {

bool all_finite(const float* x, int64_t n);

double align_value(const float* H, const float* Z, int64_t n);
// dH, dZ (either may be null) += the weighted gradients above.
void align_grad(const float* H, const float* Z, int64_t n, float w, float* dH, float* dZ);

double mse_value(const float* a, const float* b, int64_t n);
// da += w * 2 (a - b) / n
void mse_grad(const float* a, const float* b, int64_t n, float w, float* da);

// Attention maps per box b: the student's A over its sample's S_b tokens at a_off[b] ([nq, S_b]), the teacher's
// At over the box's N_b tokens at t_off[b] ([nq, N_b]), local_idx[cu_box[b] + j] = the student position of the
// box's token j.
struct AttnTransfer {
  int64_t nb = 0;
  int nq = 0;
  const float* A = nullptr;
  const int64_t* a_off = nullptr;   // [nb+1]
  const float* At = nullptr;
  const int64_t* t_off = nullptr;   // [nb+1]
  const int32_t* local_idx = nullptr;
  const int32_t* cu_box = nullptr;  // [nb+1]
};
double kl_value(const AttnTransfer& t);
// dA (layout of A) += w * dKL/dA.
void kl_grad(const AttnTransfer& t, float w, float* dA);

}  // namespace vr
