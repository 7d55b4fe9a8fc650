// LruMap (core/lru_map.h): bounded size, least recently used evicted first, a lookup refreshes an entry.
#include <string>
#include <vector>

#include "core/lru_map.h"
#include "tests/harness.h"

namespace vr::test {

VR_TEST(lru_map_evicts_least_recently_used) {
  LruMap<int, std::string> m(3);
  std::vector<std::string> evicted;
  auto evict = [&](std::string& v) { evicted.push_back(v); };
  m.insert(1, "one", evict);
  m.insert(2, "two", evict);
  m.insert(3, "three", evict);
  check_true("three entries fit a capacity of 3 with none evicted", m.size() == 3 && evicted.empty());
  check_true("find(1) gives its value and refreshes it", m.find(1) && *m.find(1) == "one");
  m.insert(4, "four", evict);  // 2 is now the least recently used
  check_true("a 4th entry evicts the least recently used (2), not the oldest inserted (1)",
             evicted == std::vector<std::string>{"two"} && !m.find(2) && m.find(1) && m.find(3) && m.find(4));
  check_true("size stays at the capacity", m.size() == 3);
  m.insert(5, "five", evict);  // order now 4, 3, 1 (the finds above): 1 goes
  check_true("the next insert evicts 1 (last looked up before 3 and 4)",
             evicted == std::vector<std::string>{"two", "one"} && !m.find(1));
  check_true("find of an absent key is null", m.find(42) == nullptr);
  LruMap<int, int> zero(0);
  int dropped = 0;
  zero.insert(1, 10, [&](int&) { ++dropped; });
  zero.insert(2, 20, [&](int&) { ++dropped; });
  check_true("a capacity of 0 holds one entry", zero.size() == 1 && dropped == 1 && *zero.find(2) == 20);
}

}  // namespace vr::test
