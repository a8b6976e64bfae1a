// okserve rate limiter (--rate-limit RPS, --rate-burst N): one token bucket over all requests
// of the server, kept as a single "theoretical arrival time" (the generic cell rate
// algorithm): each admitted request pushes it 1/RPS into the future, and a request is
// refused while it lies more than (burst - 1)/RPS ahead of now. One atomic word, no lock,
// no refill thread; with no limit configured nobody touches it.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>

namespace okserve {

class RateLimiter {
public:
    RateLimiter(double per_second, std::uint64_t burst) noexcept
        : interval_ns_(std::max<std::int64_t>(1, std::llround(1e9 / per_second))),
          tolerance_ns_(interval_ns_ * static_cast<std::int64_t>(std::max<std::uint64_t>(burst, 1) - 1)) {}

    // True when a request arriving at now_ns (any monotonic clock) may be answered.
    bool admit(std::int64_t now_ns) noexcept {
        std::int64_t tat = tat_.load(std::memory_order_relaxed);
        for (;;) {
            const std::int64_t start = std::max(tat, now_ns);
            if (start - now_ns > tolerance_ns_) return false;
            if (tat_.compare_exchange_weak(tat, start + interval_ns_, std::memory_order_relaxed)) return true;
        }
    }

    // Seconds after which a refused client finds a token (Retry-After): one interval, at least 1.
    int retry_after_s() const noexcept {
        return static_cast<int>(std::max<std::int64_t>(1, (interval_ns_ + 999'999'999) / 1'000'000'000));
    }

private:
    const std::int64_t interval_ns_;
    const std::int64_t tolerance_ns_;
    std::atomic<std::int64_t> tat_{0};
};

}  // namespace okserve
