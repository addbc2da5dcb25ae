#include "query_cache.hpp"

#include <algorithm>
#include <bit>
#include <cstring>

namespace nndex_py {
namespace {

// A multiply-fold hash in the style of wyhash: each 16 bytes cost one 64 x 64 -> 128-bit multiply, on
// four independent lanes, so a query hashes at over 10 bytes a cycle. Its quality only affects how
// often a lookup compares bytes in vain; a match is always confirmed in full.
constexpr std::uint64_t kP1 = 0x9E3779B185EBCA87ULL;
constexpr std::uint64_t kP2 = 0xC2B2AE3D27D4EB4FULL;
constexpr std::uint64_t kP3 = 0x165667B19E3779F9ULL;
constexpr std::uint64_t kP4 = 0x85EBCA77C2B2AE63ULL;

constexpr std::uint64_t rotl(std::uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

inline std::uint64_t mum(std::uint64_t a, std::uint64_t b) {
#if defined(__SIZEOF_INT128__)
  const unsigned __int128 r = static_cast<unsigned __int128>(a) * b;
  return static_cast<std::uint64_t>(r) ^ static_cast<std::uint64_t>(r >> 64);
#else
  const std::uint64_t a_lo = a & 0xFFFFFFFFu, a_hi = a >> 32, b_lo = b & 0xFFFFFFFFu, b_hi = b >> 32;
  const std::uint64_t ll = a_lo * b_lo, lh = a_lo * b_hi, hl = a_hi * b_lo, hh = a_hi * b_hi;
  const std::uint64_t mid = (ll >> 32) + (lh & 0xFFFFFFFFu) + (hl & 0xFFFFFFFFu);
  const std::uint64_t lo = (ll & 0xFFFFFFFFu) | (mid << 32);
  const std::uint64_t hi = hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
  return lo ^ hi;
#endif
}

std::uint64_t load64(const std::byte* p) {
  std::uint64_t w;
  std::memcpy(&w, p, sizeof w);
  return w;
}

std::uint64_t hash_bytes(const std::byte* p, std::size_t n, std::uint64_t seed) {
  std::uint64_t a = seed ^ kP1, b = seed ^ kP2, c = seed ^ kP3, d = seed ^ kP4;
  std::size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    a = mum(load64(p + i) ^ kP1, load64(p + i + 8) ^ a);
    b = mum(load64(p + i + 16) ^ kP2, load64(p + i + 24) ^ b);
    c = mum(load64(p + i + 32) ^ kP3, load64(p + i + 40) ^ c);
    d = mum(load64(p + i + 48) ^ kP4, load64(p + i + 56) ^ d);
  }
  std::uint64_t h = mum(a ^ rotl(c, 29), b ^ rotl(d, 43)) ^ seed;
  for (; i + 16 <= n; i += 16) h = mum(load64(p + i) ^ kP1, load64(p + i + 8) ^ h);
  if (i < n) {
    std::byte tail[16] = {};
    std::memcpy(tail, p + i, n - i);
    h = mum(load64(tail) ^ kP2, load64(tail + 8) ^ h);
  }
  return mum(h ^ kP3, static_cast<std::uint64_t>(n) ^ kP4);
}

}  // namespace

QueryCache::QueryCache(std::size_t max_entries, std::size_t max_bytes, bool colliding_hash)
    : max_entries_(max_entries), max_bytes_(max_bytes), colliding_hash_(colliding_hash) {}

std::uint64_t QueryCache::hash(const QueryKey& key) const noexcept {
  if (colliding_hash_) return 0;
  const std::uint64_t shape = (key.rows * 0x9E3779B97F4A7C15ULL) ^ rotl(key.cols, 21) ^ rotl(key.k, 42) ^
                              (key.nprobe * kP3) ^ rotl(key.ef * kP3, 33) ^ rotl(std::bit_cast<std::uint64_t>(key.oversampling), 11) ^
                              (std::uint64_t{key.dtype} << 1) ^ std::uint64_t{key.two_d};
  return hash_bytes(key.data, key.bytes, shape);
}

QueryCache::List::iterator QueryCache::find(const QueryKey& key, std::uint64_t hash) {
  auto [first, last] = by_hash_.equal_range(hash);
  for (; first != last; ++first) {
    const Entry& e = *first->second;
    if (e.dtype == key.dtype && e.two_d == key.two_d && e.rows == key.rows && e.cols == key.cols && e.k == key.k &&
        e.nprobe == key.nprobe && e.ef == key.ef &&
        std::bit_cast<std::uint64_t>(e.oversampling) == std::bit_cast<std::uint64_t>(key.oversampling) &&
        e.query_bytes == key.bytes &&
        (key.bytes == 0 || std::memcmp(e.query(), key.data, key.bytes) == 0))
      return first->second;
  }
  return lru_.end();
}

bool QueryCache::lookup(const QueryKey& key, std::uint64_t hash, std::int64_t* ids, float* sims, std::size_t count) {
  std::lock_guard lock(mutex_);
  const auto it = find(key, hash);
  if (it == lru_.end() || it->count != count) {
    ++misses_;
    return false;
  }
  lru_.splice(lru_.begin(), lru_, it);
  std::memcpy(ids, it->ids(), count * sizeof(std::int64_t));
  std::memcpy(sims, it->sims(), count * sizeof(float));
  ++hits_;
  return true;
}

void QueryCache::insert(const QueryKey& key, std::uint64_t hash, const std::int64_t* ids, const float* sims,
                        std::size_t count) {
  const std::size_t charge = key.bytes + count * (sizeof(std::int64_t) + sizeof(float)) + kEntryOverhead;
  if (charge > max_bytes_ || max_entries_ == 0) return;
  // The copy is made before taking the lock, so other threads wait only for the list work.
  const std::size_t result_bytes = count * (sizeof(std::int64_t) + sizeof(float));
  const std::size_t needed = result_bytes + key.bytes;
  std::unique_ptr<std::byte[]> buffer;
  std::size_t capacity = needed;
  if (needed >= kReuseFrom) {
    std::lock_guard lock(mutex_);
    if (spare_ != nullptr && spare_capacity_ >= needed && spare_capacity_ <= 2 * needed) {
      buffer = std::move(spare_);
      capacity = spare_capacity_;
      spare_capacity_ = 0;
    }
  }
  if (buffer == nullptr) buffer.reset(new std::byte[needed]);  // uninitialised
  std::memcpy(buffer.get(), ids, count * sizeof(std::int64_t));
  std::memcpy(buffer.get() + count * sizeof(std::int64_t), sims, count * sizeof(float));
  if (key.bytes != 0) std::memcpy(buffer.get() + result_bytes, key.data, key.bytes);
  Entry entry{hash,   key.dtype,        key.two_d, key.rows, key.cols,          key.k,    key.nprobe,
              key.ef, key.oversampling, key.bytes, count,    std::move(buffer), capacity, charge};
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
  if (oldest->capacity >= kReuseFrom && oldest->capacity >= spare_capacity_) {
    spare_ = std::move(oldest->buffer);
    spare_capacity_ = oldest->capacity;
  }
  lru_.erase(oldest);
}

void QueryCache::clear() {
  std::lock_guard lock(mutex_);
  by_hash_.clear();
  lru_.clear();
  spare_.reset();
  spare_capacity_ = 0;
  bytes_ = 0;
  hits_ = 0;
  misses_ = 0;
}

QueryCacheStats QueryCache::stats() const {
  std::lock_guard lock(mutex_);
  return {hits_, misses_, lru_.size(), bytes_};
}

}  // namespace nndex_py
