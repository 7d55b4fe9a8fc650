// OpenMP helpers that also compile without OpenMP.
#pragma once
#ifdef _OPENMP
#include <omp.h>
#endif

namespace vr::cpu {

inline int thread_id() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

}  // namespace vr::cpu
