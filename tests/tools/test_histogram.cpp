// Latency histogram: bucketing, percentiles against known distributions, precision, merge.
#include <doctest/doctest.h>

#include <cstdint>

#include "tools/loadgen/histogram.hpp"

using okserve::loadgen::Histogram;

namespace {

// The reported value must be within 1% of the true one (the design gives 0.4%).
void check_close(std::uint64_t got, std::uint64_t want) {
    CAPTURE(got);
    CAPTURE(want);
    const double diff = got > want ? static_cast<double>(got - want) : static_cast<double>(want - got);
    CHECK(diff <= static_cast<double>(want) * 0.01);
}

}  // namespace

TEST_SUITE("loadgen") {

TEST_CASE("histogram buckets are contiguous, monotonic and within 1/128 of their values") {
    CHECK(Histogram::index_of(Histogram::max_value) == Histogram::bucket_count - 1);
    CHECK(Histogram::index_of(UINT64_MAX) == Histogram::bucket_count - 1);
    for (std::size_t i = 0; i + 1 < Histogram::bucket_count; ++i) {
        CAPTURE(i);
        REQUIRE(Histogram::highest_in(i) + 1 == Histogram::lowest_in(i + 1));
        REQUIRE(Histogram::index_of(Histogram::lowest_in(i)) == i);
        REQUIRE(Histogram::index_of(Histogram::highest_in(i)) == i);
        const std::uint64_t width = Histogram::highest_in(i) - Histogram::lowest_in(i) + 1;
        REQUIRE(width * 128 <= std::max<std::uint64_t>(Histogram::lowest_in(i), 128));
    }
}

TEST_CASE("an empty histogram reports zeros") {
    const Histogram h;
    CHECK(h.count() == 0);
    CHECK(h.percentile(50) == 0);
    CHECK(h.max() == 0);
    CHECK(h.min() == 0);
}

TEST_CASE("a constant distribution gives that value at every percentile") {
    const std::uint64_t values[] = {0, 1, 255, 256, 1000, 123'456, 50'000'000, 100'000'000'000};
    for (std::uint64_t v : values) {
        CAPTURE(v);
        Histogram h;
        for (int i = 0; i < 1000; ++i) h.record(v);
        CHECK(h.count() == 1000);
        CHECK(h.max() == v);
        CHECK(h.min() == v);
        for (double p : {0.0, 50.0, 90.0, 99.0, 99.9, 100.0}) {
            CAPTURE(p);
            check_close(h.percentile(p), v);
        }
    }
}

TEST_CASE("a uniform distribution from 1 us to 100 ms gives its percentiles within 1%") {
    Histogram h;
    const std::uint64_t n = 100'000;
    const std::uint64_t step = 1000;  // 1 us .. 100 ms in ns
    for (std::uint64_t i = 1; i <= n; ++i) h.record(i * step);
    const struct { double p; std::uint64_t want; } cases[] = {
        {50, 50'000 * step}, {90, 90'000 * step}, {99, 99'000 * step}, {99.9, 99'900 * step}, {100, n * step},
    };
    for (const auto& c : cases) {
        CAPTURE(c.p);
        check_close(h.percentile(c.p), c.want);
    }
    CHECK(h.max() == n * step);
    CHECK(h.min() == step);
    check_close(static_cast<std::uint64_t>(h.mean()), (n + 1) * step / 2);
}

TEST_CASE("a two-point distribution switches value at the right percentile") {
    Histogram h;
    for (int i = 0; i < 900; ++i) h.record(20'000);     // 20 us
    for (int i = 0; i < 100; ++i) h.record(5'000'000);  // 5 ms
    check_close(h.percentile(50), 20'000);
    check_close(h.percentile(90), 20'000);    // the 900th value is still the fast one
    check_close(h.percentile(90.1), 5'000'000);
    check_close(h.percentile(99.9), 5'000'000);
    CHECK(h.max() == 5'000'000);
}

TEST_CASE("values beyond the range are clamped but max stays exact") {
    Histogram h;
    h.record(500ULL * 1'000'000'000);  // 500 s
    CHECK(h.max() == 500ULL * 1'000'000'000);
    CHECK(h.percentile(50) <= h.max());
    CHECK(h.percentile(50) >= Histogram::lowest_in(Histogram::bucket_count - 1));
}

TEST_CASE("merging per-thread histograms equals recording everything in one") {
    Histogram a;
    Histogram b;
    Histogram all;
    for (std::uint64_t i = 1; i <= 5000; ++i) {
        const std::uint64_t v = i * 7919 % 3'000'000;
        (i % 3 == 0 ? a : b).record(v);
        all.record(v);
    }
    a.merge(b);
    CHECK(a.count() == all.count());
    CHECK(a.max() == all.max());
    CHECK(a.min() == all.min());
    CHECK(a.mean() == doctest::Approx(all.mean()));
    for (double p : {1.0, 25.0, 50.0, 75.0, 90.0, 99.0, 99.9, 100.0}) {
        CAPTURE(p);
        CHECK(a.percentile(p) == all.percentile(p));
    }
}

}  // TEST_SUITE
