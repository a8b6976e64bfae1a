#include "tools/loadgen/histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace okserve::loadgen {

namespace {
constexpr std::uint64_t half = 1ULL << (Histogram::sub_bucket_bits - 1);  // sub-buckets per octave
}

// Values below 2*half map to themselves. Above, a value whose top bit is bit m is shifted right
// until it has sub_bucket_bits significant bits: the top half of [0, 2*half) is its mantissa, and
// each extra shift starts a new run of `half` buckets. The mapping is monotonic and contiguous.
std::size_t Histogram::index_of(std::uint64_t value) noexcept {
    value = std::min(value, max_value);
    if (value < 2 * half) {
        return static_cast<std::size_t>(value);
    }
    const int top = 63 - std::countl_zero(value);
    const int shift = top - (sub_bucket_bits - 1);
    return static_cast<std::size_t>(static_cast<std::uint64_t>(shift) * half + (value >> shift));
}

std::uint64_t Histogram::lowest_in(std::size_t index) noexcept {
    if (index < 2 * half) {
        return index;
    }
    const std::uint64_t shift = (index - half) / half;
    const std::uint64_t mantissa = index - shift * half;
    return mantissa << shift;
}

std::uint64_t Histogram::highest_in(std::size_t index) noexcept {
    if (index < 2 * half) {
        return index;
    }
    const std::uint64_t shift = (index - half) / half;
    return lowest_in(index) + (1ULL << shift) - 1;
}

void Histogram::record(std::uint64_t value_ns, std::uint64_t times) noexcept {
    if (times == 0) return;
    counts_[index_of(value_ns)] += times;
    count_ += times;
    sum_ += value_ns * times;
    min_ = std::min(min_, value_ns);
    max_ = std::max(max_, value_ns);
}

void Histogram::merge(const Histogram& other) noexcept {
    for (std::size_t i = 0; i < bucket_count; ++i) {
        counts_[i] += other.counts_[i];
    }
    count_ += other.count_;
    sum_ += other.sum_;
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
}

std::uint64_t Histogram::percentile(double p) const noexcept {
    if (count_ == 0) {
        return 0;
    }
    const double clamped = std::clamp(p, 0.0, 100.0);
    auto rank = static_cast<std::uint64_t>(std::ceil(clamped / 100.0 * static_cast<double>(count_)));
    rank = std::clamp<std::uint64_t>(rank, 1, count_);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < bucket_count; ++i) {
        seen += counts_[i];
        if (seen >= rank) {
            const std::uint64_t mid = lowest_in(i) + (highest_in(i) - lowest_in(i)) / 2;
            return std::clamp(mid, min_, max_);
        }
    }
    return max_;
}

}  // namespace okserve::loadgen
