#include "query_cache.hpp"

#include <algorithm>
#include <cstring>

namespace nndex_py {
namespace {

// The xxHash64 round and avalanche (public-domain constants): four independent lanes of 8-byte
// words, so hashing a query runs at several bytes per cycle.
constexpr std::uint64_t kP1 = 0x9E3779B185EBCA87ULL;
constexpr std::uint64_t kP2 = 0xC2B2AE3D27D4EB4FULL;
constexpr std::uint64_t kP3 = 0x165667B19E3779F9ULL;
constexpr std::uint64_t kP4 = 0x85EBCA77C2B2AE63ULL;

constexpr std::uint64_t rotl(std::uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
constexpr std::uint64_t mix(std::uint64_t acc, std::uint64_t word) { return rotl(acc + word * kP2, 31) * kP1; }
std::uint64_t load64(const std::byte* p) {
  std::uint64_t w;
  std::memcpy(&w, p, sizeof w);
  return w;
}

std::uint64_t hash_bytes(const std::byte* p, std::size_t n, std::uint64_t seed) {
  std::uint64_t a = seed + kP1 + kP2, b = seed + kP2, c = seed, d = seed - kP1;
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a = mix(a, load64(p + i));
    b = mix(b, load64(p + i + 8));
    c = mix(c, load64(p + i + 16));
    d = mix(d, load64(p + i + 24));
  }
  std::uint64_t h = rotl(a, 1) + rotl(b, 7) + rotl(c, 12) + rotl(d, 18) + n;
  for (; i + 8 <= n; i += 8) h = rotl(h ^ mix(0, load64(p + i)), 27) * kP1 + kP4;
  if (i < n) {
    std::uint64_t tail = 0;
    std::memcpy(&tail, p + i, n - i);
    h = rotl(h ^ mix(0, tail), 27) * kP1 + kP4;
  }
  h ^= h >> 33;
  h *= kP2;
  h ^= h >> 29;
  h *= kP3;
  h ^= h >> 32;
  return h;
}

}  // namespace

QueryCache::QueryCache(std::size_t max_entries, std::size_t max_bytes, bool colliding_hash)
    : max_entries_(max_entries), max_bytes_(max_bytes), colliding_hash_(colliding_hash) {}

std::uint64_t QueryCache::hash(const QueryKey& key) const noexcept {
  if (colliding_hash_) return 0;
  const std::uint64_t shape = (key.rows * 0x9E3779B97F4A7C15ULL) ^ rotl(key.cols, 21) ^ rotl(key.k, 42) ^
                              (key.nprobe * kP3) ^ (std::uint64_t{key.dtype} << 1) ^ std::uint64_t{key.two_d};
  return hash_bytes(key.data, key.bytes, shape);
}

QueryCache::List::iterator QueryCache::find(const QueryKey& key, std::uint64_t hash) {
  auto [first, last] = by_hash_.equal_range(hash);
  for (; first != last; ++first) {
    const Entry& e = *first->second;
    if (e.dtype == key.dtype && e.two_d == key.two_d && e.rows == key.rows && e.cols == key.cols && e.k == key.k &&
        e.nprobe == key.nprobe && e.query.size() == key.bytes &&
        (key.bytes == 0 || std::memcmp(e.query.data(), key.data, key.bytes) == 0))
      return first->second;
  }
  return lru_.end();
}

bool QueryCache::lookup(const QueryKey& key, std::uint64_t hash, std::int64_t* ids, float* sims, std::size_t count) {
  std::lock_guard lock(mutex_);
  const auto it = find(key, hash);
  if (it == lru_.end() || it->ids.size() != count) {
    ++misses_;
    return false;
  }
  lru_.splice(lru_.begin(), lru_, it);
  std::copy(it->ids.begin(), it->ids.end(), ids);
  std::copy(it->sims.begin(), it->sims.end(), sims);
  ++hits_;
  return true;
}

void QueryCache::insert(const QueryKey& key, std::uint64_t hash, const std::int64_t* ids, const float* sims,
                        std::size_t count) {
  const std::size_t charge = key.bytes + count * (sizeof(std::int64_t) + sizeof(float)) + kEntryOverhead;
  if (charge > max_bytes_ || max_entries_ == 0) return;
  // The copies are made before taking the lock, so other threads wait only for the list work.
  Entry entry{hash,
              key.dtype,
              key.two_d,
              key.rows,
              key.cols,
              key.k,
              key.nprobe,
              std::vector<std::byte>(key.data, key.data + key.bytes),
              std::vector<std::int64_t>(ids, ids + count),
              std::vector<float>(sims, sims + count),
              charge};
  std::lock_guard lock(mutex_);
  if (const auto it = find(key, hash); it != lru_.end()) {  // stored by another thread meanwhile
    lru_.splice(lru_.begin(), lru_, it);
    return;
  }
  lru_.push_front(std::move(entry));
  by_hash_.emplace(hash, lru_.begin());
  bytes_ += charge;
  while (lru_.size() > max_entries_ || bytes_ > max_bytes_) evict_oldest();
}

void QueryCache::evict_oldest() {
  const auto oldest = std::prev(lru_.end());
  auto [first, last] = by_hash_.equal_range(oldest->hash);
  for (; first != last; ++first) {
    if (first->second == oldest) {
      by_hash_.erase(first);
      break;
    }
  }
  bytes_ -= oldest->charge;
  lru_.erase(oldest);
}

void QueryCache::clear() {
  std::lock_guard lock(mutex_);
  by_hash_.clear();
  lru_.clear();
  bytes_ = 0;
  hits_ = 0;
  misses_ = 0;
}

QueryCacheStats QueryCache::stats() const {
  std::lock_guard lock(mutex_);
  return {hits_, misses_, lru_.size(), bytes_};
}

}  // namespace nndex_py
