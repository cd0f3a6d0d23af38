// The load generator's latency histogram (bench/load/histogram.h): bucket
// boundaries, the relative-error bound, quantiles and merging.
#include <gtest/gtest.h>

#include <random>

#include "bench/load/histogram.h"

namespace warden::bench {
namespace {

TEST(BenchHistogramTest, BucketsTileTheRangeWithoutGaps) {
  uint64_t next = 0;
  for (size_t i = 0; i < Histogram::kBucketCount; ++i) {
    ASSERT_EQ(Histogram::BucketLow(i), next) << "bucket " << i;
    ASSERT_EQ(Histogram::BucketIndexOf(Histogram::BucketLow(i)), i);
    const uint64_t last = Histogram::BucketLow(i) + (Histogram::BucketWidth(i) - 1);
    ASSERT_EQ(Histogram::BucketIndexOf(last), i);
    next = last + 1;  // wraps to 0 after the last bucket
  }
  EXPECT_EQ(next, 0u);
}

TEST(BenchHistogramTest, SmallValuesAreExact) {
  Histogram h;
  for (uint64_t v = 0; v < Histogram::kSubBuckets; ++v) h.Record(v);
  EXPECT_EQ(h.ValueAtQuantile(0.5), Histogram::kSubBuckets / 2 - 1);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), Histogram::kSubBuckets - 1);
}

TEST(BenchHistogramTest, RelativeErrorIsBounded) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 100000; ++i) {
    const uint64_t v = rng() >> (rng() % 64);
    // v is the median of {0, v, max}: its bucket's midpoint, not clamped.
    Histogram h;
    h.Record(0);
    h.Record(v);
    h.Record(std::numeric_limits<uint64_t>::max());
    const double got = static_cast<double>(h.ValueAtQuantile(0.5));
    const double err =
        std::abs(got - static_cast<double>(v)) / std::max(1.0, static_cast<double>(v));
    ASSERT_LE(err, 1.0 / 128) << v;
  }
}

TEST(BenchHistogramTest, QuantilesOfAUniformSpread) {
  Histogram h;
  for (uint64_t v = 1; v <= 100000; ++v) h.Record(v * 1000);  // 1 us .. 100 ms in ns
  EXPECT_EQ(h.count(), 100000u);
  EXPECT_NEAR(static_cast<double>(h.ValueAtQuantile(0.5)), 50e6, 50e6 / 128);
  EXPECT_NEAR(static_cast<double>(h.ValueAtQuantile(0.99)), 99e6, 99e6 / 128);
  EXPECT_NEAR(static_cast<double>(h.ValueAtQuantile(0.999)), 99.9e6, 99.9e6 / 128);
  EXPECT_EQ(h.ValueAtQuantile(1.0), 100000u * 1000);
  EXPECT_NEAR(h.mean(), 50000.5 * 1000, 1);
}

TEST(BenchHistogramTest, MergeEqualsRecordingEverything) {
  Histogram a, b, all;
  for (uint64_t v = 0; v < 5000; ++v) {
    (v % 3 == 0 ? a : b).Record(v * 977);
    all.Record(v * 977);
  }
  a.Merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.min(), all.min());
  EXPECT_EQ(a.max(), all.max());
  for (double q : {0.1, 0.5, 0.9, 0.99, 0.999})
    EXPECT_EQ(a.ValueAtQuantile(q), all.ValueAtQuantile(q));
}

TEST(BenchHistogramTest, EmptyIsZero) {
  Histogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.ValueAtQuantile(0.99), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.mean(), 0.0);
}

}  // namespace
}  // namespace warden::bench
