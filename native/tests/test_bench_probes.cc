// The machine probes' shared timing loop (bench/repeat_timer.h) and the attention probe's input checks.
#include <string>

#include "bench/attention_probe.h"
#include "bench/repeat_timer.h"
#include "tests/harness.h"

namespace vr::test {

VR_TEST(bench_repeat_timer) {
  int calls = 0;
  bench::RepeatTimes t = bench::time_repeats([&] { calls++; }, 0.0, 5, 100);
  check_true("time_repeats: min_repeats calls when no time is asked for", calls == 5 && t.repeats == 5);
  check_true("time_repeats: best <= median", t.best_ms <= t.median_ms && t.best_ms >= 0);
  calls = 0;
  t = bench::time_repeats([&] { calls++; }, 600.0, 1, 7);
  check_true("time_repeats: stops at max_repeats before the time is up", calls == 7 && t.repeats == 7);
}

VR_TEST(bench_attention_probe) {
  bench::AttentionShape s;
  s.lq = s.lk = 9;
  s.items = 2;
  s.heads = 4;
  s.kv_heads = 2;
  s.head_dim = 16;
  s.causal = true;
  for (bool bwd : {false, true}) {
    s.backward = bwd;
    const bench::AttentionResult r = bench::measure_attention(s, 0.0, 3);
    const double fwd_flop = 4.0 * 9 * 9 * 16 * 4 * 2 * 0.5;
    check_true(std::string("attention probe ") + (bwd ? "backward" : "forward") + ": 3 repeats, flop count",
               r.repeats == 3 && r.best_ms <= r.median_ms && r.flop == (bwd ? 2.5 : 1.0) * fwd_flop);
  }
  s.kv_heads = 3;
  expect_throw("attention probe: heads not a multiple of kv_heads", [&] { bench::measure_attention(s, 0.0, 1); });
}

}  // namespace vr::test
