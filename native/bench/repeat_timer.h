// The timing loop the machine probes share: call run() at least min_repeats times and until `seconds` have
// passed (never more than max_repeats calls), then report the best and median call. Header-only, like the probes.
#pragma once
#include <algorithm>
#include <chrono>
#include <vector>

namespace vr::bench {

struct RepeatTimes {
  double best_ms = 0, median_ms = 0;
  int repeats = 0;
};

template <class F>
RepeatTimes time_repeats(F&& run, double seconds, int min_repeats, size_t max_repeats) {
  std::vector<double> ms;
  const auto start = std::chrono::steady_clock::now();
  auto elapsed_s = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  while (int(ms.size()) < min_repeats || elapsed_s() < seconds) {
    const auto t0 = std::chrono::steady_clock::now();
    run();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    if (ms.size() >= max_repeats) break;
  }
  std::sort(ms.begin(), ms.end());
  return {ms.front(), ms[ms.size() / 2], int(ms.size())};
}

}  // namespace vr::bench
