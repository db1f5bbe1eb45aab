// The baseline design the seeds use: one std::mutex around an
// std::unordered_map of keys to std::list iterators, spliced to the front on
// every hit. Values are shared_ptrs so a hit hands back the value without a
// copy, as callcache does. Keys are looked up by view (a transparent hash),
// so the benchmark hands every contender its keys the same way.
#pragma once

#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace callcache::bench {

template <class V>
class SeedsLru {
 public:
  explicit SeedsLru(std::size_t capacity) : capacity_(capacity) {}

  std::shared_ptr<const V> get(std::string_view key) {
    std::lock_guard lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) return nullptr;
    list_.splice(list_.begin(), list_, it->second);
    return it->second->second;
  }

  void put(std::string_view key, V value) {
    std::lock_guard lock(mu_);
    auto it = map_.find(key);
    if (it != map_.end()) {
      it->second->second = std::make_shared<const V>(std::move(value));
      list_.splice(list_.begin(), list_, it->second);
      return;
    }
    list_.emplace_front(key, std::make_shared<const V>(std::move(value)));
    map_.emplace(key, list_.begin());
    if (map_.size() > capacity_) {
      map_.erase(list_.back().first);
      list_.pop_back();
    }
  }

 private:
  std::mutex mu_;
  std::size_t capacity_;
  std::list<std::pair<std::string, std::shared_ptr<const V>>> list_;
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view k) const noexcept {
      return std::hash<std::string_view>{}(k);
    }
  };
  std::unordered_map<std::string, typename decltype(list_)::iterator, Hash, std::equal_to<>> map_;
};

}  // namespace callcache::bench
