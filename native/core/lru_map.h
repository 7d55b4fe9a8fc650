// A map that holds at most `capacity` entries and drops the least recently used one to make room: for caches
// keyed on values without a bound (the cuBLASLt plan cache is keyed on m, which follows the prompt length).
// Not thread-safe: the owner locks.
#pragma once
#include <cstddef>
#include <list>
#include <map>
#include <utility>

namespace vr {

template <class K, class V>
class LruMap {
 public:
  explicit LruMap(size_t capacity) : capacity_(capacity < 1 ? 1 : capacity) {}

  // The entry for key (now the most recently used), or nullptr.
  V* find(const K& key) {
    auto it = map_.find(key);
    if (it == map_.end()) return nullptr;
    order_.splice(order_.begin(), order_, it->second.second);
    return &it->second.first;
  }

  // Adds key (absent) as the most recently used entry; when full, first hands the least recently used value to
  // evict(V&) and erases it. Returns the new value.
  template <class Evict>
  V& insert(const K& key, V value, Evict&& evict) {
    if (map_.size() >= capacity_) {
      auto victim = map_.find(order_.back());
      evict(victim->second.first);
      map_.erase(victim);
      order_.pop_back();
    }
    order_.push_front(key);
    return map_.emplace(key, Entry{std::move(value), order_.begin()}).first->second.first;
  }

  size_t size() const { return map_.size(); }
  size_t capacity() const { return capacity_; }

 private:
  using Entry = std::pair<V, typename std::list<K>::iterator>;
  size_t capacity_;
  std::list<K> order_;  // front = most recently used
  std::map<K, Entry> map_;
};

}  // namespace vr
