// okserve::loadgen HdrHistogram: owns HdrHistogram's bucket layout (lowest discernible value,
// highest trackable value, significant digits) and its V2 encoding, so the counts we log are
// what the standard HdrHistogram tools expect. Pure arithmetic and bytes: no files, no clocks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace okserve::loadgen {

// The same layout as HdrHistogram's: buckets of sub_bucket_count/2 slots, each bucket twice as
// wide as the one before, the first bucket of sub_bucket_count slots of width 2^unit_magnitude.
class HdrHistogram {
public:
    // Throws std::invalid_argument for lowest < 1, highest < 2 * lowest or digits outside 0..5.
    HdrHistogram(std::int64_t lowest, std::int64_t highest, int digits);

    // Values above highest() are counted in the last slot; negative ones as 0.
    void record(std::int64_t value, std::uint64_t count = 1) noexcept;
    // Adds other's counts: slot by slot when the layouts match, else value by value.
    void add(const HdrHistogram& other) noexcept;
    void reset() noexcept;

    std::int64_t lowest() const noexcept { return lowest_; }
    std::int64_t highest() const noexcept { return highest_; }
    int digits() const noexcept { return digits_; }
    std::uint64_t total() const noexcept { return total_; }
    const std::vector<std::uint64_t>& counts() const noexcept { return counts_; }
    bool same_layout(const HdrHistogram& other) const noexcept;

    std::size_t index_of(std::int64_t value) const noexcept;
    std::int64_t lowest_equivalent(std::size_t index) const noexcept;
    std::int64_t highest_equivalent(std::size_t index) const noexcept;
    std::int64_t median_equivalent(std::size_t index) const noexcept;
    // HdrHistogram's max: the highest equivalent value of the highest non-empty slot (0 if empty).
    std::int64_t max() const noexcept;

    // Sets one slot, for the decoder. False when the index is outside the layout.
    bool set_count(std::size_t index, std::uint64_t count) noexcept;

private:
    std::int64_t lowest_;
    std::int64_t highest_;
    int digits_;
    int unit_magnitude_ = 0;
    int sub_bucket_half_count_magnitude_ = 0;
    std::int64_t sub_bucket_count_ = 0;
    std::int64_t sub_bucket_half_count_ = 0;
    std::uint64_t sub_bucket_mask_ = 0;
    int bucket_count_ = 0;
    std::vector<std::uint64_t> counts_;
    std::uint64_t total_ = 0;
};

struct DecodeError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// V2 encoding (cookie 0x1c849313): a 40-byte big-endian header, then the counts as ZigZag
// LEB128 words, a run of zeros as one negative word.
std::string encode_v2(const HdrHistogram& h);
// The compressed form a log line carries (cookie 0x1c849314): the V2 bytes through zlib.
std::string encode_compressed(const HdrHistogram& h);
// Either form; throws DecodeError saying what is wrong.
HdrHistogram decode(std::string_view bytes);

std::string base64_encode(std::string_view bytes);
// Throws DecodeError on a character outside the alphabet or a bad length.
std::string base64_decode(std::string_view text);

}  // namespace okserve::loadgen
