// A latency histogram with bounded relative error, in the manner of
// HdrHistogram: log-linear buckets over uint64 values (nanoseconds here).
//
// Values below 2^kSubBucketBits get one bucket each (exact). Above that, every
// power-of-two range [2^m, 2^(m+1)) is split into 2^(kSubBucketBits-1) equal
// buckets, so a bucket is never wider than 1/64 of its lower bound. A quantile
// is reported as the midpoint of its bucket, clamped to the exact minimum and
// maximum: the relative error is at most 1/128 (0.78%). The whole uint64 range
// takes 3,776 buckets (30 KiB); recording is a count-leading-zeros and an
// increment.
//
// Not thread-safe: each load-generator thread records into its own histograms,
// which are merged after the run.
#ifndef WARDEN_BENCH_LOAD_HISTOGRAM_H_
#define WARDEN_BENCH_LOAD_HISTOGRAM_H_

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace warden::bench {

class Histogram {
 public:
  static constexpr int kSubBucketBits = 7;
  static constexpr uint64_t kSubBuckets = uint64_t{1} << kSubBucketBits;  // exact below this
  static constexpr uint64_t kHalf = kSubBuckets / 2;  // buckets per power of two above it
  // Exact buckets, then kHalf per power of two from 2^kSubBucketBits to 2^63.
  static constexpr size_t kBucketCount = (64 - kSubBucketBits + 2) * kHalf;

  Histogram() : counts_(kBucketCount, 0) {}

  // The bucket holding `v`.
  static constexpr size_t BucketIndexOf(uint64_t v) {
    if (v < kSubBuckets) return static_cast<size_t>(v);
    const int msb = 63 - std::countl_zero(v);
    const int shift = msb - (kSubBucketBits - 1);
    return static_cast<size_t>((static_cast<uint64_t>(shift) + 1) * kHalf + ((v >> shift) - kHalf));
  }
  // The smallest value in bucket `i`, and the number of values it holds.
  static constexpr uint64_t BucketLow(size_t i) {
    if (i < kSubBuckets) return i;
    const uint64_t shift = i / kHalf - 1;
    return (i % kHalf + kHalf) << shift;
  }
  static constexpr uint64_t BucketWidth(size_t i) {
    return i < kSubBuckets ? 1 : uint64_t{1} << (i / kHalf - 1);
  }

  void Record(uint64_t v) {
    ++counts_[BucketIndexOf(v)];
    ++count_;
    sum_ += static_cast<double>(v);
    min_ = std::min(min_, v);
    max_ = std::max(max_, v);
  }

  void Merge(const Histogram& other) {
    for (size_t i = 0; i < kBucketCount; ++i) counts_[i] += other.counts_[i];
    count_ += other.count_;
    sum_ += other.sum_;
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
  }

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ == 0 ? 0.0 : sum_ / static_cast<double>(count_); }

  // The value at quantile q (0 < q <= 1): the midpoint of the bucket holding
  // the ceil(q * count)-th smallest value, clamped to [min, max]. 0 if empty.
  uint64_t ValueAtQuantile(double q) const {
    if (count_ == 0) return 0;
    if (q >= 1.0) return max_;
    const double want = std::ceil(q * static_cast<double>(count_));
    const uint64_t rank = std::max<uint64_t>(1, static_cast<uint64_t>(want));
    uint64_t seen = 0;
    for (size_t i = 0; i < kBucketCount; ++i) {
      seen += counts_[i];
      if (seen >= rank) {
        const uint64_t mid = BucketLow(i) + BucketWidth(i) / 2;
        return std::clamp(mid, min_, max_);
      }
    }
    return max_;
  }

 private:
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  double sum_ = 0;
  uint64_t min_ = std::numeric_limits<uint64_t>::max();
  uint64_t max_ = 0;
};

static_assert(Histogram::BucketIndexOf(std::numeric_limits<uint64_t>::max()) + 1 ==
              Histogram::kBucketCount);

}  // namespace warden::bench

#endif  // WARDEN_BENCH_LOAD_HISTOGRAM_H_
