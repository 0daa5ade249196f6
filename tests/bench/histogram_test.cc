// LatencyHistogram: bounded relative error against exact percentiles, exact
// counts, min/max/mean, and merging across shards.
#include "bench/histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace raftkv::bench {
namespace {

constexpr double kMaxRelativeError = 1.0 / LatencyHistogram::kSubBuckets;  // < 0.79 %

// The exact percentile with the histogram's definition: the smallest value
// with at least ceil(q * n) values at or below it.
uint64_t exact_quantile(std::vector<uint64_t> v, double q) {
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  rank = std::clamp<size_t>(rank, 1, v.size());
  return v[rank - 1];
}

void expect_quantiles_within_error(const LatencyHistogram& h, const std::vector<uint64_t>& values) {
  for (double q : {0.0, 0.01, 0.1, 0.5, 0.75, 0.9, 0.99, 0.999, 0.9999, 1.0}) {
    const uint64_t exact = exact_quantile(values, q);
    const uint64_t got = h.value_at_quantile(q);
    EXPECT_GE(got, exact) << "q=" << q << ": reported below the exact value";
    EXPECT_LE(static_cast<double>(got - exact), kMaxRelativeError * static_cast<double>(exact))
        << "q=" << q << " exact=" << exact << " got=" << got;
  }
}

TEST(LatencyHistogram, BucketsTileTheWholeRangeWithoutGapsOrOverlap) {
  EXPECT_EQ(LatencyHistogram::bucket_lowest(0), 0u);
  for (size_t i = 1; i < LatencyHistogram::kBucketCount; ++i) {
    ASSERT_EQ(LatencyHistogram::bucket_lowest(i), LatencyHistogram::bucket_highest(i - 1) + 1)
        << "bucket " << i;
  }
  EXPECT_EQ(LatencyHistogram::bucket_highest(LatencyHistogram::kBucketCount - 1), UINT64_MAX);
  EXPECT_EQ(LatencyHistogram::bucket_index(UINT64_MAX), LatencyHistogram::kBucketCount - 1);
}

TEST(LatencyHistogram, EveryBucketIsNarrowerThanItsRelativeErrorBound) {
  for (size_t i = LatencyHistogram::kExactLimit; i < LatencyHistogram::kBucketCount; ++i) {
    const uint64_t lo = LatencyHistogram::bucket_lowest(i);
    const uint64_t width = LatencyHistogram::bucket_highest(i) - lo;
    ASSERT_LE(static_cast<double>(width), kMaxRelativeError * static_cast<double>(lo)) << i;
    ASSERT_EQ(LatencyHistogram::bucket_index(lo), i);
    ASSERT_EQ(LatencyHistogram::bucket_index(LatencyHistogram::bucket_highest(i)), i);
  }
}

TEST(LatencyHistogram, SmallValuesAreExact) {
  LatencyHistogram h;
  for (uint64_t v = 0; v < LatencyHistogram::kExactLimit; ++v) h.record(v);
  EXPECT_EQ(h.count(), LatencyHistogram::kExactLimit);
  EXPECT_EQ(h.value_at_quantile(0.5), 127u);
  EXPECT_EQ(h.value_at_quantile(1.0), 255u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 255u);
}

TEST(LatencyHistogram, EmptyReportsZeros) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.mean(), 0.0);
  EXPECT_EQ(h.value_at_quantile(0.99), 0u);
}

TEST(LatencyHistogram, PercentilesOfUniformRandomLatenciesWithinTwoSignificantDigits) {
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<uint64_t> dist(1'000, 50'000'000);  // 1 us .. 50 ms in ns
  std::vector<uint64_t> values(200'000);
  LatencyHistogram h;
  for (auto& v : values) {
    v = dist(rng);
    h.record(v);
  }
  EXPECT_EQ(h.count(), values.size());
  expect_quantiles_within_error(h, values);
}

TEST(LatencyHistogram, PercentilesOfHeavyTailedLatenciesWithinTwoSignificantDigits) {
  // Log-normal: most requests fast, a long tail, the shape real latencies have.
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> dist(13.0, 1.5);  // median ~ 0.44 ms in ns
  std::vector<uint64_t> values(100'000);
  LatencyHistogram h;
  for (auto& v : values) {
    v = static_cast<uint64_t>(dist(rng));
    h.record(v);
  }
  expect_quantiles_within_error(h, values);
}

TEST(LatencyHistogram, MinMaxAndMeanAreExact) {
  LatencyHistogram h;
  h.record(1'000'003);
  h.record(17);
  h.record(999'999'999'999);
  EXPECT_EQ(h.min(), 17u);
  EXPECT_EQ(h.max(), 999'999'999'999u);
  EXPECT_DOUBLE_EQ(h.mean(), (1'000'003.0 + 17.0 + 999'999'999'999.0) / 3);
  EXPECT_EQ(h.value_at_quantile(1.0), 999'999'999'999u) << "the top percentile is clamped to max";
  EXPECT_EQ(h.value_at_quantile(0.0), 17u);
}

TEST(LatencyHistogram, RecordWithCountEqualsRepeatedRecords) {
  LatencyHistogram a, b;
  a.record(123'456, 1000);
  for (int i = 0; i < 1000; ++i) b.record(123'456);
  EXPECT_EQ(a.count(), b.count());
  EXPECT_EQ(a.value_at_quantile(0.5), b.value_at_quantile(0.5));
  EXPECT_DOUBLE_EQ(a.mean(), b.mean());
}

TEST(LatencyHistogram, MergeOfShardsEqualsOneHistogramOfEverything) {
  std::mt19937_64 rng(3);
  std::exponential_distribution<double> dist(1.0 / 2e6);
  LatencyHistogram all;
  std::vector<LatencyHistogram> shards(8);
  std::vector<uint64_t> values;
  for (int i = 0; i < 80'000; ++i) {
    const auto v = static_cast<uint64_t>(dist(rng));
    values.push_back(v);
    all.record(v);
    shards[static_cast<size_t>(i) % shards.size()].record(v);
  }
  LatencyHistogram merged;
  for (const auto& s : shards) merged.merge(s);
  EXPECT_EQ(merged.count(), all.count());
  EXPECT_EQ(merged.min(), all.min());
  EXPECT_EQ(merged.max(), all.max());
  EXPECT_NEAR(merged.mean(), all.mean(), 1e-6 * all.mean());
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    EXPECT_EQ(merged.value_at_quantile(q), all.value_at_quantile(q)) << q;
  }
  expect_quantiles_within_error(merged, values);
}

TEST(LatencyHistogram, MergeIntoEmptyAndResetForget) {
  LatencyHistogram a, empty;
  a.record(500);
  a.merge(empty);
  EXPECT_EQ(a.count(), 1u);
  EXPECT_EQ(a.min(), 500u);
  empty.merge(a);
  EXPECT_EQ(empty.min(), 500u);
  EXPECT_EQ(empty.max(), 500u);
  a.reset();
  EXPECT_EQ(a.count(), 0u);
  EXPECT_EQ(a.value_at_quantile(0.5), 0u);
}

}  // namespace
}  // namespace raftkv::bench
