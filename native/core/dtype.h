// Element types of checkpoint tensors and of the kernels, and exact conversions between them.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>

namespace vr {

enum class DType : int { F32 = 0, BF16 = 1, F16 = 2, I32 = 3, I64 = 4, U8 = 5 };

inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: case DType::I32: return 4;
    case DType::BF16: case DType::F16: return 2;
    case DType::I64: return 8;
    case DType::U8: return 1;
  }
  return 0;
}

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::BF16: return "BF16";
    case DType::F16: return "F16";
    case DType::I32: return "I32";
    case DType::I64: return "I64";
    case DType::U8: return "U8";
  }
  return "?";
}

// safetensors spelling ("F32", "BF16", ...); returns false for unsupported types.
bool dtype_from_name(const std::string& s, DType* out);

// bf16 -> f32 is exact: the 16 bits become the top half of the float.
inline float bf16_to_f32(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// f32 -> bf16 with round-to-nearest-even (what torch's .to(bfloat16) does); NaN stays NaN.
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

// Convert n elements of a floating tensor (F32/BF16/F16) to f32 / bf16.
void convert_to_f32(float* dst, const void* src, DType src_type, size_t n);
void convert_to_bf16(uint16_t* dst, const void* src, DType src_type, size_t n);

}  // namespace vr
