// Per-phase timing of a training step, for performance work: set VREFLECT_TRAIN_PROFILE=1 and every optimizer
// step prints, on stderr, the wall time and process CPU time (user + kernel: page faults show up there) spent in
// each named phase since the previous print. Off (one branch per phase) otherwise.
#pragma once
#include <chrono>

namespace vr {

bool step_profile_enabled();
void step_profile_add(const char* phase, double wall_s, double cpu_s, double sys_s);
// Prints and resets the table (no-op when disabled).
void step_profile_report(const char* title);
double process_cpu_s(double* sys_s);

class PhaseTimer {
 public:
  explicit PhaseTimer(const char* phase) : phase_(phase), on_(step_profile_enabled()) {
    if (on_) {
      t0_ = std::chrono::steady_clock::now();
      c0_ = process_cpu_s(&s0_);
    }
  }
  ~PhaseTimer() {
    if (!on_) return;
    double s1 = 0;
    const double c1 = process_cpu_s(&s1);
    step_profile_add(phase_, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count(), c1 - c0_,
                     s1 - s0_);
  }
  PhaseTimer(const PhaseTimer&) = delete;
  PhaseTimer& operator=(const PhaseTimer&) = delete;

 private:
  const char* phase_;
  bool on_;
  std::chrono::steady_clock::time_point t0_;
  double c0_ = 0, s0_ = 0;
};

}  // namespace vr
