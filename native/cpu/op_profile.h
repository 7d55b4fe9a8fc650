// Opt-in per-op wall-clock profile of the forward pass (VREFLECT_PROFILE=1): the model code wraps each op call
// in a Scope with a label ("gemm bf16 305x18944x3584", "vit attention window", ...) and its FLOPs;
// Session::prefill prints the table to stderr. Off by default: a scope then costs one call to enabled(), which
// reads a flag set once from the environment.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace vr::prof {

bool enabled();
void add(const std::string& label, double ms, double cpu_ms, double flop);
double process_cpu_ms();  // CPU time of the whole process (all threads): robust to other jobs on a shared machine
void reset();
// Table of every label (wall ms, CPU ms, share, GFLOP/s), sorted by time, then a total line; "" when nothing was recorded.
std::string report(const std::string& title);

class Scope {
 public:
  explicit Scope(const char* label, double flop = 0) : on_(enabled()) {
    if (on_) start(label, flop);
  }
  Scope(const std::string& label, double flop) : on_(enabled()) {
    if (on_) start(label, flop);
  }
  ~Scope() {
    if (on_)
      add(label_, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0_).count(),
          process_cpu_ms() - cpu0_, flop_);
  }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  void start(const std::string& label, double flop) {
    label_ = label;
    flop_ = flop;
    cpu0_ = process_cpu_ms();
    t0_ = std::chrono::steady_clock::now();
  }
  bool on_;
  std::string label_;
  double flop_ = 0, cpu0_ = 0;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace vr::prof
