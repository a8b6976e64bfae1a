#include "tools/loadgen/hdr_histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <zlib.h>

namespace okserve::loadgen {

namespace {

constexpr std::uint32_t v2_cookie = 0x1c849303 | 0x10;
constexpr std::uint32_t v2_compressed_cookie = 0x1c849304 | 0x10;
constexpr std::size_t header_size = 40;
// A corrupt header must not make us allocate gigabytes: 2^24 slots is far beyond any real
// layout (3 digits from 1 to 2^62 needs about 54,000).
constexpr std::size_t max_counts = std::size_t{1} << 24;
constexpr std::size_t max_inflated = std::size_t{64} << 20;

void put_be(std::string& out, std::uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

std::uint64_t get_be(std::string_view in, std::size_t at, int bytes) {
    std::uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(in[at + static_cast<std::size_t>(i)]);
    return v;
}

// ZigZag, then LEB128 with at most 9 bytes: the ninth carries the last 8 bits whole.
void put_zigzag(std::string& out, std::int64_t value) {
    std::uint64_t v = (static_cast<std::uint64_t>(value) << 1) ^ static_cast<std::uint64_t>(value >> 63);
    for (int i = 0; i < 8; ++i) {
        if ((v >> 7) == 0) {
            out += static_cast<char>(v);
            return;
        }
        out += static_cast<char>((v & 0x7f) | 0x80);
        v >>= 7;
    }
    out += static_cast<char>(v);
}

bool get_zigzag(std::string_view in, std::size_t& at, std::int64_t& value) {
    std::uint64_t v = 0;
    for (int i = 0; i < 9; ++i) {
        if (at >= in.size()) return false;
        const auto byte = static_cast<unsigned char>(in[at++]);
        if (i == 8) {
            v |= static_cast<std::uint64_t>(byte) << 56;
            break;
        }
        v |= static_cast<std::uint64_t>(byte & 0x7f) << (7 * i);
        if ((byte & 0x80) == 0) break;
    }
    value = static_cast<std::int64_t>(v >> 1) ^ -static_cast<std::int64_t>(v & 1);
    return true;
}

std::string inflate_all(std::string_view in) {
    z_stream z{};
    if (inflateInit(&z) != Z_OK) throw DecodeError("zlib inflateInit failed");
    std::string out;
    char chunk[16384];
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z.avail_in = static_cast<uInt>(in.size());
    int rc = Z_OK;
    while (rc == Z_OK) {
        z.next_out = reinterpret_cast<Bytef*>(chunk);
        z.avail_out = sizeof chunk;
        rc = inflate(&z, Z_NO_FLUSH);
        out.append(chunk, sizeof chunk - z.avail_out);
        if (out.size() > max_inflated) rc = Z_MEM_ERROR;
        if (rc == Z_OK && z.avail_in == 0 && z.avail_out != 0) rc = Z_BUF_ERROR;  // input ended early
    }
    inflateEnd(&z);
    if (rc != Z_STREAM_END) throw DecodeError("compressed histogram does not inflate (zlib error " + std::to_string(rc) + ")");
    return out;
}

HdrHistogram decode_plain(std::string_view in) {
    if (in.size() < header_size) throw DecodeError("histogram shorter than its 40-byte header");
    const auto cookie = static_cast<std::uint32_t>(get_be(in, 0, 4));
    if ((cookie & ~0xf0U) != (v2_cookie & ~0xf0U)) {
        throw DecodeError("not a V2 histogram encoding (cookie " + std::to_string(cookie) + ")");
    }
    const std::uint64_t payload = get_be(in, 4, 4);
    const std::uint64_t digits = get_be(in, 12, 4);
    const auto lowest = static_cast<std::int64_t>(get_be(in, 16, 8));
    const auto highest = static_cast<std::int64_t>(get_be(in, 24, 8));
    if (payload != in.size() - header_size) throw DecodeError("histogram payload length does not match its bytes");
    // Bytes 8..11 (normalizing index offset) and 32..39 (conversion ratio) are ignored, as the
    // JavaScript port does: it writes 1 and an integer where Java writes 0 and a double.
    if (digits > 5 || lowest < 1 || highest < 2 * lowest) throw DecodeError("impossible histogram layout in header");
    HdrHistogram h(lowest, highest, static_cast<int>(digits));
    if (h.counts().size() > max_counts) throw DecodeError("histogram layout too large");
    std::size_t at = header_size;
    std::size_t index = 0;
    while (at < in.size()) {
        std::int64_t word = 0;
        if (!get_zigzag(in, at, word)) throw DecodeError("histogram counts end inside a word");
        if (word < 0) {
            if (-static_cast<std::uint64_t>(word) > max_counts) throw DecodeError("zero run beyond the histogram");
            index += static_cast<std::size_t>(-word);
        } else if (!h.set_count(index++, static_cast<std::uint64_t>(word))) {
            throw DecodeError("histogram counts run past its layout");
        }
    }
    return h;
}

}  // namespace

HdrHistogram::HdrHistogram(std::int64_t lowest, std::int64_t highest, int digits)
    : lowest_(lowest), highest_(highest), digits_(digits) {
    if (lowest < 1 || highest < 2 * lowest || digits < 0 || digits > 5) {
        throw std::invalid_argument("bad histogram layout");
    }
    const auto single_unit = static_cast<double>(2 * static_cast<std::int64_t>(std::pow(10, digits)));
    const int count_magnitude = static_cast<int>(std::ceil(std::log2(single_unit)));
    sub_bucket_half_count_magnitude_ = std::max(count_magnitude, 1) - 1;
    unit_magnitude_ = 63 - std::countl_zero(static_cast<std::uint64_t>(lowest));
    sub_bucket_count_ = std::int64_t{1} << (sub_bucket_half_count_magnitude_ + 1);
    sub_bucket_half_count_ = sub_bucket_count_ / 2;
    sub_bucket_mask_ = static_cast<std::uint64_t>(sub_bucket_count_ - 1) << unit_magnitude_;
    // Buckets needed so the last one reaches highest.
    std::uint64_t smallest_untrackable = static_cast<std::uint64_t>(sub_bucket_count_) << unit_magnitude_;
    bucket_count_ = 1;
    while (smallest_untrackable <= static_cast<std::uint64_t>(highest)) {
        if (smallest_untrackable > static_cast<std::uint64_t>(INT64_MAX) / 2) {
            ++bucket_count_;
            break;
        }
        smallest_untrackable <<= 1;
        ++bucket_count_;
    }
    counts_.assign(static_cast<std::size_t>((bucket_count_ + 1) * sub_bucket_half_count_), 0);
}

std::size_t HdrHistogram::index_of(std::int64_t value) const noexcept {
    const auto v = static_cast<std::uint64_t>(std::clamp<std::int64_t>(value, 0, highest_));
    const int bucket = 64 - unit_magnitude_ - sub_bucket_half_count_magnitude_ - 1 - std::countl_zero(v | sub_bucket_mask_);
    const auto sub_bucket = static_cast<std::int64_t>(v >> (bucket + unit_magnitude_));
    const std::int64_t index = (static_cast<std::int64_t>(bucket + 1) << sub_bucket_half_count_magnitude_) +
                               (sub_bucket - sub_bucket_half_count_);
    return std::min(static_cast<std::size_t>(index), counts_.size() - 1);
}

std::int64_t HdrHistogram::lowest_equivalent(std::size_t index) const noexcept {
    int bucket = static_cast<int>(index >> sub_bucket_half_count_magnitude_) - 1;
    auto sub_bucket = static_cast<std::int64_t>(index & static_cast<std::size_t>(sub_bucket_half_count_ - 1)) +
                      sub_bucket_half_count_;
    if (bucket < 0) {
        sub_bucket -= sub_bucket_half_count_;
        bucket = 0;
    }
    return sub_bucket << (bucket + unit_magnitude_);
}

std::int64_t HdrHistogram::highest_equivalent(std::size_t index) const noexcept {
    const int bucket = std::max(0, static_cast<int>(index >> sub_bucket_half_count_magnitude_) - 1);
    return lowest_equivalent(index) + (std::int64_t{1} << (bucket + unit_magnitude_)) - 1;
}

std::int64_t HdrHistogram::median_equivalent(std::size_t index) const noexcept {
    const int bucket = std::max(0, static_cast<int>(index >> sub_bucket_half_count_magnitude_) - 1);
    return lowest_equivalent(index) + ((std::int64_t{1} << (bucket + unit_magnitude_)) >> 1);
}

std::int64_t HdrHistogram::max() const noexcept {
    for (std::size_t i = counts_.size(); i-- > 0;) {
        if (counts_[i] != 0) return highest_equivalent(i);
    }
    return 0;
}

void HdrHistogram::record(std::int64_t value, std::uint64_t count) noexcept {
    counts_[index_of(value)] += count;
    total_ += count;
}

bool HdrHistogram::set_count(std::size_t index, std::uint64_t count) noexcept {
    if (index >= counts_.size()) return false;
    total_ += count - counts_[index];
    counts_[index] = count;
    return true;
}

bool HdrHistogram::same_layout(const HdrHistogram& o) const noexcept {
    return lowest_ == o.lowest_ && digits_ == o.digits_ && counts_.size() == o.counts_.size();
}

void HdrHistogram::add(const HdrHistogram& other) noexcept {
    const bool same = same_layout(other);
    for (std::size_t i = 0; i < other.counts_.size(); ++i) {
        if (other.counts_[i] == 0) continue;
        if (same) {
            counts_[i] += other.counts_[i];
            total_ += other.counts_[i];
        } else {
            record(other.median_equivalent(i), other.counts_[i]);
        }
    }
}

void HdrHistogram::reset() noexcept {
    std::fill(counts_.begin(), counts_.end(), 0);
    total_ = 0;
}

std::string encode_v2(const HdrHistogram& h) {
    const auto& counts = h.counts();
    std::size_t limit = counts.size();
    while (limit > 0 && counts[limit - 1] == 0) --limit;
    std::string payload;
    for (std::size_t i = 0; i < limit;) {
        if (counts[i] != 0) {
            put_zigzag(payload, static_cast<std::int64_t>(counts[i++]));
            continue;
        }
        std::size_t zeros = 0;
        while (i < limit && counts[i] == 0) {
            ++zeros;
            ++i;
        }
        put_zigzag(payload, zeros > 1 ? -static_cast<std::int64_t>(zeros) : 0);
    }
    std::string out;
    put_be(out, v2_cookie, 4);
    put_be(out, payload.size(), 4);
    put_be(out, 0, 4);  // normalizing index offset
    put_be(out, static_cast<std::uint64_t>(h.digits()), 4);
    put_be(out, static_cast<std::uint64_t>(h.lowest()), 8);
    put_be(out, static_cast<std::uint64_t>(h.highest()), 8);
    put_be(out, std::bit_cast<std::uint64_t>(1.0), 8);  // integer to double conversion ratio
    return out + payload;
}

std::string encode_compressed(const HdrHistogram& h) {
    const std::string plain = encode_v2(h);
    uLongf size = compressBound(static_cast<uLong>(plain.size()));
    std::string packed(size, '\0');
    if (compress2(reinterpret_cast<Bytef*>(packed.data()), &size, reinterpret_cast<const Bytef*>(plain.data()),
                  static_cast<uLong>(plain.size()), Z_DEFAULT_COMPRESSION) != Z_OK) {
        throw std::runtime_error("zlib compress2 failed");
    }
    std::string out;
    put_be(out, v2_compressed_cookie, 4);
    put_be(out, size, 4);
    out.append(packed.data(), size);
    return out;
}

HdrHistogram decode(std::string_view bytes) {
    if (bytes.size() < 8) throw DecodeError("histogram too short for its cookie");
    const auto cookie = static_cast<std::uint32_t>(get_be(bytes, 0, 4));
    if ((cookie & ~0xf0U) == (v2_compressed_cookie & ~0xf0U)) {
        const std::uint64_t length = get_be(bytes, 4, 4);
        if (length != bytes.size() - 8) throw DecodeError("compressed length does not match its bytes");
        return decode_plain(inflate_all(bytes.substr(8)));
    }
    return decode_plain(bytes);
}

namespace {
constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
}

std::string base64_encode(std::string_view bytes) {
    std::string out;
    for (std::size_t i = 0; i < bytes.size(); i += 3) {
        std::uint32_t v = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
        if (i + 1 < bytes.size()) v |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
        if (i + 2 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 2]);
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += i + 1 < bytes.size() ? alphabet[(v >> 6) & 63] : '=';
        out += i + 2 < bytes.size() ? alphabet[v & 63] : '=';
    }
    return out;
}

std::string base64_decode(std::string_view text) {
    if (text.size() % 4 != 0) throw DecodeError("base64 length is not a multiple of 4");
    std::string out;
    for (std::size_t i = 0; i < text.size(); i += 4) {
        std::uint32_t v = 0;
        int pad = 0;
        for (std::size_t k = 0; k < 4; ++k) {
            const char c = text[i + k];
            const char* at = c == '\0' ? nullptr : std::strchr(alphabet, c);
            if (c == '=' && i + 4 == text.size() && k >= 2) {
                ++pad;
                v <<= 6;
                continue;
            }
            if (at == nullptr || pad > 0) throw DecodeError("bad base64 character");
            v = (v << 6) | static_cast<std::uint32_t>(at - alphabet);
        }
        out += static_cast<char>((v >> 16) & 0xff);
        if (pad < 2) out += static_cast<char>((v >> 8) & 0xff);
        if (pad < 1) out += static_cast<char>(v & 0xff);
    }
    return out;
}

}  // namespace okserve::loadgen
