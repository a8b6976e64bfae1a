// okserve latency histogram: how long requests took, from a request's first byte read to
// its answer's last byte written. One per thread (inside its Tally), written by that
// thread only, summed when read. Two views of the same samples:
//  - Prometheus buckets (10 µs .. 10 s, 1-2.5-5 steps), exact: a sample is counted in the
//    first bucket whose bound it does not exceed;
//  - fine log-linear buckets (16 per power of two, about 6% wide) for percentiles.
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace okserve {

class LatencyHistogram {
public:
    // The Prometheus bucket bounds ("le"), in nanoseconds; +Inf follows.
    static constexpr std::array<std::int64_t, 19> bounds_ns{
        10'000,      25'000,      50'000,      100'000,       250'000,       500'000,      1'000'000,
        2'500'000,   5'000'000,   10'000'000,  25'000'000,    50'000'000,    100'000'000,  250'000'000,
        500'000'000, 1'000'000'000, 2'500'000'000, 5'000'000'000, 10'000'000'000};

    // Fine buckets: 0..1023 ns in 16 steps of 64 ns, then 16 per power of two up to 2^35 ns
    // (34 s); slower samples share the last bucket.
    static constexpr int sub_bits = 4;
    static constexpr int first_octave = 10;  // 1024 ns
    static constexpr int last_octave = 34;
    static constexpr std::size_t fine_count = (last_octave - first_octave + 2) << sub_bits;

    static constexpr std::size_t fine_index(std::int64_t ns) noexcept {
        if (ns < 0) ns = 0;
        const auto v = static_cast<std::uint64_t>(ns);
        if (v < (1u << first_octave)) return v >> (first_octave - sub_bits);
        int octave = 63 - std::countl_zero(v);
        if (octave > last_octave) return fine_count - 1;
        const std::size_t sub = (v >> (octave - sub_bits)) & ((1u << sub_bits) - 1);
        return (static_cast<std::size_t>(octave - first_octave + 1) << sub_bits) + sub;
    }
    // The largest value that lands in fine bucket i (what a percentile reports).
    static constexpr std::int64_t fine_upper_ns(std::size_t i) noexcept {
        if (i < (1u << sub_bits)) return static_cast<std::int64_t>(((i + 1) << (first_octave - sub_bits)) - 1);
        const int octave = static_cast<int>(i >> sub_bits) + first_octave - 1;
        const std::uint64_t sub = i & ((1u << sub_bits) - 1);
        return static_cast<std::int64_t>((((1u << sub_bits) + sub + 1) << (octave - sub_bits)) - 1);
    }
    static constexpr std::size_t bucket_index(std::int64_t ns) noexcept {
        std::size_t i = 0;
        while (i < bounds_ns.size() && ns > bounds_ns[i]) ++i;
        return i;  // bounds_ns.size() is +Inf
    }

    // `count` samples of `each_ns` (pipelined answers written together share a duration).
    void record(std::int64_t each_ns, std::uint64_t count = 1) noexcept {
        bump(fine_[fine_index(each_ns)], count);
        bump(buckets_[bucket_index(each_ns)], count);
        bump(count_, count);
        bump(sum_ns_, static_cast<std::uint64_t>(each_ns < 0 ? 0 : each_ns) * count);
    }

    std::uint64_t fine(std::size_t i) const noexcept { return fine_[i].load(std::memory_order_relaxed); }
    std::uint64_t bucket(std::size_t i) const noexcept { return buckets_[i].load(std::memory_order_relaxed); }
    std::uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }
    std::uint64_t sum_ns() const noexcept { return sum_ns_.load(std::memory_order_relaxed); }

private:
    // One writer: a load and a store, no locked instruction.
    static void bump(std::atomic<std::uint64_t>& a, std::uint64_t n) noexcept {
        a.store(a.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }

    std::array<std::atomic<std::uint64_t>, fine_count> fine_{};
    std::array<std::atomic<std::uint64_t>, bounds_ns.size() + 1> buckets_{};  // not cumulative
    std::atomic<std::uint64_t> count_{0};
    std::atomic<std::uint64_t> sum_ns_{0};
};

static_assert(LatencyHistogram::fine_index(1023) == 15);
static_assert(LatencyHistogram::fine_index(1024) == 16);
static_assert(LatencyHistogram::fine_upper_ns(15) == 1023);
static_assert(LatencyHistogram::fine_upper_ns(16) == 1087);
static_assert(LatencyHistogram::fine_index(LatencyHistogram::fine_upper_ns(100)) == 100);
static_assert(LatencyHistogram::fine_index(LatencyHistogram::fine_upper_ns(100) + 1) == 101);
static_assert(LatencyHistogram::bucket_index(10'000) == 0 && LatencyHistogram::bucket_index(10'001) == 1);

}  // namespace okserve
