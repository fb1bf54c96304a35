// The load generator's latency histogram: log-linear buckets in the manner of HdrHistogram
// (Gil Tene), 128 sub-buckets per power of two, so any recorded value is known to within
// 1/128 (0.8%) of itself while the whole range 1 ns .. 2^40 ns fits in ~4.5k counters.
// Recording is a shift and an add, cheap enough for every reply; histograms of several
// threads merge by adding counters.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

namespace rawio {

class LogLinearHistogram {
 public:
  static constexpr int kSubBits = 7;             // 128 sub-buckets per octave
  static constexpr int kLinear = 2 << kSubBits;  // values below 256 are counted exactly

  LogLinearHistogram() : counts_(Index(UINT64_C(1) << 40) + 1, 0) {}

  void Record(uint64_t v) {
    size_t i = Index(v);
    if (i >= counts_.size()) i = counts_.size() - 1;
    counts_[i]++;
    total_++;
    sum_ += static_cast<double>(v);
    if (v > max_) max_ = v;
    if (v < min_) min_ = v;
  }

  void Merge(const LogLinearHistogram& o) {
    for (size_t i = 0; i < counts_.size(); i++) counts_[i] += o.counts_[i];
    total_ += o.total_;
    sum_ += o.sum_;
    if (o.max_ > max_) max_ = o.max_;
    if (o.min_ < min_) min_ = o.min_;
  }

  uint64_t Count() const { return total_; }
  uint64_t Max() const { return total_ ? max_ : 0; }
  uint64_t Min() const { return total_ ? min_ : 0; }
  double Mean() const { return total_ ? sum_ / static_cast<double>(total_) : 0; }

  // The value at quantile q (0..1): the midpoint of the bucket holding the value of rank
  // ceil(q * count) (the nearest rank, as src/loadgen/percentiles.ts takes it: p90 of 16
  // values is the 15th, not the 14th), clamped to the exact max so that p100 is never above
  // what was seen. The 1e-9 keeps a product a rounding error past a whole number on it.
  double Quantile(double q) const {
    if (total_ == 0) return 0;
    double x = std::ceil(q * static_cast<double>(total_) - 1e-9);
    uint64_t rank = x < 1 ? 1 : static_cast<uint64_t>(x);
    uint64_t seen = 0;
    for (size_t i = 0; i < counts_.size(); i++) {
      seen += counts_[i];
      if (seen >= rank) {
        double mid = Midpoint(i);
        return mid > static_cast<double>(max_) ? static_cast<double>(max_) : mid;
      }
    }
    return static_cast<double>(max_);
  }

  // Calls f(value, count) for each non-empty bucket in ascending order; the value is the
  // bucket's midpoint, clamped to the exact max as Quantile() does.
  template <typename F>
  void ForEach(F f) const {
    for (size_t i = 0; i < counts_.size(); i++) {
      if (counts_[i] == 0) continue;
      double mid = Midpoint(i);
      f(mid > static_cast<double>(max_) ? static_cast<double>(max_) : mid, counts_[i]);
    }
  }

 private:
  static size_t Index(uint64_t v) {
    if (v < static_cast<uint64_t>(kLinear)) return static_cast<size_t>(v);
    int bits = 64 - __builtin_clzll(v);
    int shift = bits - (kSubBits + 1);  // v >> shift lands in [128, 255]
    uint64_t mant = v >> shift;
    return kLinear + static_cast<size_t>(shift - 1) * (1u << kSubBits) +
           static_cast<size_t>(mant - (1u << kSubBits));
  }

  static double Midpoint(size_t i) {
    if (i < static_cast<size_t>(kLinear)) return static_cast<double>(i);
    size_t k = i - kLinear;
    int shift = static_cast<int>(k >> kSubBits) + 1;
    uint64_t mant = (k & ((1u << kSubBits) - 1)) + (1u << kSubBits);
    uint64_t lo = mant << shift;
    uint64_t width = UINT64_C(1) << shift;
    return static_cast<double>(lo) + static_cast<double>(width - 1) / 2;
  }

  std::vector<uint64_t> counts_;
  uint64_t total_ = 0;
  double sum_ = 0;
  uint64_t max_ = 0;
  uint64_t min_ = UINT64_MAX;
};

}  // namespace rawio
