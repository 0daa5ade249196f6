// LatencyHistogram: a log-linear histogram of non-negative integers (latencies
// in nanoseconds), in the manner of HdrHistogram, with bounded relative error.
//
// Layout. Values below 2 * kSubBuckets (256) get one exact bucket each. Above,
// every power-of-two range [2^e, 2^(e+1)) is split into kSubBuckets (128)
// equal buckets, so a bucket's width is at most 1/128 of its lowest value:
//
//   index:   0 1 2 ... 255 | 256 ... 383  | 384 ... 511  | ...
//   values:  exact         | [256,512)/2  | [512,1024)/4 | ... up to 2^64-1
//
// A reported percentile is the highest value of the bucket that holds the
// exact percentile, clamped to the recorded max, so it is never below the exact
// value and at most 1/128 (< 0.79 %, i.e. two significant decimal digits)
// above it. 7424 counters of 8 bytes cover the whole uint64 range, so a
// histogram never overflows its range and needs no configuration.
//
// Not thread-safe: record into one histogram per thread (or shard) and merge().
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace raftkv::bench {

class LatencyHistogram {
 public:
  static constexpr int kSubBucketBits = 7;
  static constexpr uint64_t kSubBuckets = uint64_t{1} << kSubBucketBits;  // 128
  static constexpr uint64_t kExactLimit = 2 * kSubBuckets;                // 256
  static constexpr size_t kBucketCount = kExactLimit + (64 - kSubBucketBits - 1) * kSubBuckets;

  LatencyHistogram();

  /// Adds `count` occurrences of `value`.
  void record(uint64_t value, uint64_t count = 1);
  /// Adds every recorded value of `other` (as if recorded here).
  void merge(const LatencyHistogram& other);
  /// Forgets everything recorded.
  void reset();

  uint64_t count() const { return count_; }
  /// Exact smallest / largest recorded value; 0 when empty.
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  uint64_t max() const { return max_; }
  /// Exact mean (from an exact running sum); 0 when empty.
  double mean() const;
  /// The value at quantile q (0 <= q <= 1): the smallest recorded value v such
  /// that at least ceil(q * count) values are <= v, rounded up to the top of
  /// its bucket and clamped to [min, max]. 0 when empty.
  /// REQUIRES: 0 <= q <= 1.
  uint64_t value_at_quantile(double q) const;

  /// Bucket arithmetic, exposed for tests.
  static size_t bucket_index(uint64_t value);
  static uint64_t bucket_lowest(size_t index);
  static uint64_t bucket_highest(size_t index);

 private:
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
  long double sum_ = 0;
};

}  // namespace raftkv::bench
