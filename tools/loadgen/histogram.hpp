// okserve::loadgen latency histogram: owns log-linear bucketing, percentiles and merging.
// Pure arithmetic on nanosecond counts: it knows nothing of sockets, threads or clocks.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace okserve::loadgen {

// HdrHistogram-like: every power of two is split into 128 equal sub-buckets, so a bucket is at
// most 1/128 of the values it holds and the midpoint we report is within 0.4% of any of them.
// Values below 256 ns are exact. Fixed size (no allocation), so one lives in each worker thread
// and record() costs a count-leading-zeros and an increment.
class Histogram {
public:
    static constexpr int sub_bucket_bits = 8;                          // 256 slots per octave pair
    static constexpr std::uint64_t max_value = (1ULL << 37) - 1;       // ~137 s, above the 100 s goal
    static constexpr std::size_t bucket_count =
        (37 - sub_bucket_bits + 1) * (1U << (sub_bucket_bits - 1)) + (1U << (sub_bucket_bits - 1));

    // Values above max_value are clamped into the last bucket; max() stays exact.
    void record(std::uint64_t value_ns, std::uint64_t times = 1) noexcept;
    void merge(const Histogram& other) noexcept;

    // The value at percentile p (0..100): the midpoint of the bucket holding the ceil(p% * n)-th
    // smallest value, never above max(). 0 when empty.
    std::uint64_t percentile(double p) const noexcept;
    std::uint64_t count() const noexcept { return count_; }
    std::uint64_t min() const noexcept { return count_ ? min_ : 0; }
    std::uint64_t max() const noexcept { return max_; }
    double mean() const noexcept { return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0.0; }

    // Exposed for tests: the bucket a value lands in and the range of values a bucket holds.
    static std::size_t index_of(std::uint64_t value) noexcept;
    static std::uint64_t lowest_in(std::size_t index) noexcept;
    static std::uint64_t highest_in(std::size_t index) noexcept;

private:
    std::array<std::uint64_t, bucket_count> counts_{};
    std::uint64_t count_ = 0;
    std::uint64_t sum_ = 0;
    std::uint64_t min_ = UINT64_MAX;
    std::uint64_t max_ = 0;
};

}  // namespace okserve::loadgen
