// The few cuBLASLt C entry points, types and enum values vreflect uses, declared by us: the build machines'
// CUDA toolkits ship no cublasLt.h, and the library is loaded at run time (cublaslt_loader.h), so nothing here
// may depend on a cuBLAS header. Values are those of the public C API (NVIDIA cuBLAS documentation, "cuBLASLt
// API": cublasLtMatmulDescAttributes_t, cublasLtMatmulPreferenceAttributes_t, cublasLtEpilogue_t,
// cublasComputeType_t, cublasOperation_t, cublasStatus_t; cudaDataType_t from library_types.h). They are part
// of the stable ABI of libcublasLt.so.12 and .so.13.
#pragma once
#include <cstddef>
#include <cstdint>

struct CUstream_st;

namespace vr::cuda::lt {

using Status = int;  // cublasStatus_t
constexpr Status kStatusSuccess = 0;
constexpr Status kStatusNotSupported = 15;

using Handle = struct OpaqueHandle*;              // cublasLtHandle_t
using MatmulDesc = struct OpaqueMatmulDesc*;      // cublasLtMatmulDesc_t
using MatrixLayout = struct OpaqueMatrixLayout*;  // cublasLtMatrixLayout_t
using Preference = struct OpaquePreference*;      // cublasLtMatmulPreference_t

struct MatmulAlgo {  // cublasLtMatmulAlgo_t: opaque, 8 x uint64
  uint64_t data[8];
};
struct HeuristicResult {  // cublasLtMatmulHeuristicResult_t
  MatmulAlgo algo;
  size_t workspace_size;
  Status state;
  float waves_count;
  int reserved[4];
};

// cudaDataType_t
constexpr int kR32F = 0;
constexpr int kR16BF = 14;
// cublasComputeType_t
constexpr int kCompute32F = 68;
// cublasOperation_t
constexpr int kOpN = 0;
constexpr int kOpT = 1;
// cublasLtMatmulDescAttributes_t
constexpr int kDescTransA = 3;
constexpr int kDescTransB = 4;
constexpr int kDescEpilogue = 7;
constexpr int kDescBiasPointer = 8;
constexpr int kDescBiasDataType = 26;
// cublasLtEpilogue_t
constexpr uint32_t kEpilogueDefault = 1;
constexpr uint32_t kEpilogueBias = 4;
// cublasLtMatmulPreferenceAttributes_t
constexpr int kPrefMaxWorkspaceBytes = 1;
constexpr int kPrefMinAlignmentA = 5;
constexpr int kPrefMinAlignmentB = 6;
constexpr int kPrefMinAlignmentC = 7;
constexpr int kPrefMinAlignmentD = 8;

// Function pointer types of the entry points (all return cublasStatus_t except the version/string getters).
struct Api {
  Status (*Create)(Handle*);
  Status (*Destroy)(Handle);
  size_t (*GetVersion)();
  Status (*MatmulDescCreate)(MatmulDesc*, int compute_type, int scale_type);
  Status (*MatmulDescDestroy)(MatmulDesc);
  Status (*MatmulDescSetAttribute)(MatmulDesc, int attr, const void* buf, size_t bytes);
  Status (*MatrixLayoutCreate)(MatrixLayout*, int type, uint64_t rows, uint64_t cols, int64_t ld);
  Status (*MatrixLayoutDestroy)(MatrixLayout);
  Status (*MatmulPreferenceCreate)(Preference*);
  Status (*MatmulPreferenceDestroy)(Preference);
  Status (*MatmulPreferenceSetAttribute)(Preference, int attr, const void* buf, size_t bytes);
  Status (*MatmulAlgoGetHeuristic)(Handle, MatmulDesc, MatrixLayout a, MatrixLayout b, MatrixLayout c,
                                   MatrixLayout d, Preference, int requested, HeuristicResult* results,
                                   int* returned);
  Status (*Matmul)(Handle, MatmulDesc, const void* alpha, const void* A, MatrixLayout, const void* B, MatrixLayout,
                   const void* beta, const void* C, MatrixLayout, void* D, MatrixLayout, const MatmulAlgo* algo,
                   void* workspace, size_t workspace_bytes, CUstream_st* stream);
  const char* (*GetStatusString)(Status);  // optional (may be null in old releases)
};

}  // namespace vr::cuda::lt
