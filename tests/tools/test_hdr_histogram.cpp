// HdrHistogram layout and V2 encoding: a line made by the reference JavaScript port decodes to
// the counts it was made from, our encoding of the same counts has the same payload, and every
// encoding round-trips exactly. Corrupt input is refused, never half-read.
#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <string>

#include "tools/loadgen/hdr_histogram.hpp"
#include "tools/loadgen/histogram.hpp"

using okserve::loadgen::DecodeError;
using okserve::loadgen::HdrHistogram;

namespace {

// Made with hdr-histogram-js 3.x: build({lowestDiscernibleValue: 1, highestTrackableValue:
// 3600000000, numberOfSignificantValueDigits: 3}), value k of `known_values` recorded k+1 times,
// then encodeIntoCompressedBase64.
constexpr const char* js_line = "HISTFAAAADV4nJNpmSzMwMAgxMDAwMjAwMDMAAEgNsO1yUsY4HwmFrbj/BxcKwV45PrjhD6HiAAApvIHnQ==";
constexpr std::int64_t known_values[] = {1, 2, 3, 1000, 1001, 2047, 2048, 2049, 123456, 5000000};
// The same line's V2 payload (after the 40-byte header), read out with zlib.
constexpr const char* js_payload_hex = "00020406c70f080aa9100c1e8f5e12f35414";

std::string hex(const std::string& bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : bytes) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

HdrHistogram known() {
    HdrHistogram h(1, 3'600'000'000, 3);
    for (std::size_t k = 0; k < std::size(known_values); ++k) h.record(known_values[k], k + 1);
    return h;
}

}  // namespace

TEST_SUITE("loadgen") {

TEST_CASE("hdr layout: contiguous slots, each value in its own slot, HdrHistogram's counts length") {
    struct Layout { std::int64_t lowest, highest; int digits; std::size_t length; };
    // Lengths from HdrHistogram's formula: (buckets + 1) * sub_bucket_count / 2.
    const Layout layouts[] = {{1, 3'600'000'000, 3, 23 * 1024}, {1, (1LL << 37) - 1, 2, 31 * 128}, {1000, 100'000'000, 2, 12 * 128}};
    for (const Layout& l : layouts) {
        CAPTURE(l.lowest);
        CAPTURE(l.digits);
        const HdrHistogram h(l.lowest, l.highest, l.digits);
        CHECK(h.counts().size() == l.length);
        // Values above highest are clamped into its slot, so the check stops there.
        for (std::size_t i = 0; i + 1 < h.counts().size() && h.highest_equivalent(i) < l.highest; ++i) {
            CAPTURE(i);
            REQUIRE(h.highest_equivalent(i) + 1 == h.lowest_equivalent(i + 1));
            REQUIRE(h.index_of(h.lowest_equivalent(i)) == i);
            REQUIRE(h.index_of(h.highest_equivalent(i)) == i);
        }
        CHECK(h.highest_equivalent(h.counts().size() - 1) >= l.highest);
    }
}

TEST_CASE("hdr layout: the summary histogram is HdrHistogram's 1 ns .. 2^37 ns at 2 digits") {
    const HdrHistogram hdr(1, (1LL << 37) - 1, 2);
    std::mt19937_64 rng(7);
    for (int i = 0; i < 100000; ++i) {
        const std::uint64_t v = rng() >> (27 + rng() % 37);
        CAPTURE(v);
        REQUIRE(okserve::loadgen::Histogram::index_of(v) == hdr.index_of(static_cast<std::int64_t>(v)));
    }
}

TEST_CASE("hdr encoding: a line from the reference JavaScript port decodes to its counts") {
    const HdrHistogram h = okserve::loadgen::decode(okserve::loadgen::base64_decode(js_line));
    CHECK(h.lowest() == 1);
    CHECK(h.highest() == 3'600'000'000);
    CHECK(h.digits() == 3);
    CHECK(h.total() == 55);
    CHECK(h.counts() == known().counts());
}

TEST_CASE("hdr encoding: our V2 payload for the same counts is byte for byte the reference's") {
    const std::string v2 = okserve::loadgen::encode_v2(known());
    REQUIRE(v2.size() > 40);
    CHECK(hex(v2.substr(0, 4)) == "1c849313");
    CHECK(hex(v2.substr(12, 20)) == "00000003" "0000000000000001" "00000000d693a400");
    CHECK(hex(v2.substr(40)) == js_payload_hex);
    CHECK(hex(okserve::loadgen::encode_compressed(known()).substr(0, 4)) == "1c849314");
}

TEST_CASE("hdr encoding: write then read gives the same counts, whatever the layout and counts") {
    struct Layout { std::int64_t lowest, highest; int digits; };
    const Layout layouts[] = {{1, 3'600'000'000, 3}, {1, 1'000'000, 2}, {1000, 100'000'000, 1}, {1, INT64_MAX / 2, 5}};
    std::mt19937_64 rng(42);
    for (const Layout& l : layouts) {
        for (int round = 0; round < 5; ++round) {
            CAPTURE(l.digits);
            CAPTURE(round);
            HdrHistogram h(l.lowest, l.highest, l.digits);
            const int n = round == 0 ? 0 : 1 << (round * 3);
            for (int i = 0; i < n; ++i) h.record(static_cast<std::int64_t>(rng() >> (rng() % 64)), 1 + rng() % 3);
            if (round == 4) h.record(l.lowest, std::uint64_t{1} << 62);  // a count that needs all 9 bytes
            const std::string line = okserve::loadgen::base64_encode(okserve::loadgen::encode_compressed(h));
            const HdrHistogram back = okserve::loadgen::decode(okserve::loadgen::base64_decode(line));
            CHECK(back.same_layout(h));
            CHECK(back.total() == h.total());
            CHECK(back.counts() == h.counts());
        }
    }
}

TEST_CASE("hdr encoding: corrupt bytes are refused") {
    const std::string good = okserve::loadgen::encode_compressed(known());
    const std::string plain = okserve::loadgen::encode_v2(known());
    const std::string cases[] = {
        "",
        good.substr(0, 7),
        good.substr(0, good.size() - 1),                 // compressed length no longer matches
        "\x1c\x84\x93\x99" + good.substr(4),             // unknown cookie
        plain.substr(0, 39),                             // header cut short
        plain.substr(0, plain.size() - 1),               // payload length no longer matches
        good.substr(0, 8) + std::string(good.size() - 8, 'x'),  // not zlib
    };
    for (const std::string& bytes : cases) {
        CAPTURE(hex(bytes));
        CHECK_THROWS_AS(okserve::loadgen::decode(bytes), DecodeError);
    }
    CHECK_THROWS_AS(okserve::loadgen::base64_decode("abc"), DecodeError);
    CHECK_THROWS_AS(okserve::loadgen::base64_decode("ab!d"), DecodeError);
    CHECK_THROWS_AS(okserve::loadgen::base64_decode("a=bc"), DecodeError);
    CHECK(okserve::loadgen::base64_decode(okserve::loadgen::base64_encode("xy")) == "xy");
    CHECK(okserve::loadgen::base64_encode("xyz1") == "eHl6MQ==");
}

}  // TEST_SUITE
