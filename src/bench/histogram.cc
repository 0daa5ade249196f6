#include "bench/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

#include "base/check.h"

namespace raftkv::bench {

LatencyHistogram::LatencyHistogram() : counts_(kBucketCount, 0) {}

size_t LatencyHistogram::bucket_index(uint64_t value) {
  if (value < kExactLimit) return static_cast<size_t>(value);
  // value >> shift lies in [kSubBuckets, 2 * kSubBuckets).
  const int shift = std::bit_width(value) - (kSubBucketBits + 1);
  const uint64_t sub = (value >> shift) - kSubBuckets;
  return static_cast<size_t>(kExactLimit + static_cast<uint64_t>(shift - 1) * kSubBuckets + sub);
}

uint64_t LatencyHistogram::bucket_lowest(size_t index) {
  RAFTKV_CHECK(index < kBucketCount);
  if (index < kExactLimit) return index;
  const uint64_t k = index - kExactLimit;
  const uint64_t shift = k / kSubBuckets + 1;
  const uint64_t sub = k % kSubBuckets + kSubBuckets;
  return sub << shift;
}

uint64_t LatencyHistogram::bucket_highest(size_t index) {
  RAFTKV_CHECK(index < kBucketCount);
  if (index < kExactLimit) return index;
  const uint64_t shift = (index - kExactLimit) / kSubBuckets + 1;
  return bucket_lowest(index) + ((uint64_t{1} << shift) - 1);
}

void LatencyHistogram::record(uint64_t value, uint64_t count) {
  if (count == 0) return;
  counts_[bucket_index(value)] += count;
  count_ += count;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
  sum_ += static_cast<long double>(value) * static_cast<long double>(count);
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  for (size_t i = 0; i < kBucketCount; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
}

void LatencyHistogram::reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = 0;
  min_ = UINT64_MAX;
  max_ = 0;
  sum_ = 0;
}

double LatencyHistogram::mean() const {
  return count_ == 0 ? 0.0 : static_cast<double>(sum_ / static_cast<long double>(count_));
}

uint64_t LatencyHistogram::value_at_quantile(double q) const {
  RAFTKV_CHECK(q >= 0.0 && q <= 1.0);
  if (count_ == 0) return 0;
  uint64_t rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_)));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  for (size_t i = 0; i < kBucketCount; ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::clamp(bucket_highest(i), min_, max_);
  }
  return max_;  // unreachable: the counts add up to count_
}

}  // namespace raftkv::bench
