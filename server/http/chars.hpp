// okserve::http character classes of HTTP and URI syntax (RFC 9110 5.6, RFC 3986 2).
// Internal to server/http: constant tables and tiny helpers, no parsing state.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace okserve::http::chars {

// One byte per octet value; a class is one bit, so a scan loop costs one load and one test.
enum Class : std::uint8_t {
    tchar = 1 << 0,      // token characters (RFC 9110 5.6.2)
    field_char = 1 << 1, // may appear in a field value: HTAB, SP, VCHAR, obs-text
    uri_char = 1 << 2,   // unreserved, reserved but '#', and '%' (RFC 3986 2)
    hex_digit = 1 << 3,
    reg_name = 1 << 4,   // unreserved and sub-delims: a host name without '%'
    scheme_char = 1 << 5,
};

constexpr bool in(std::string_view set, int c) {
    for (char s : set)
        if (static_cast<unsigned char>(s) == c) return true;
    return false;
}

constexpr std::array<std::uint8_t, 256> make_table() {
    std::array<std::uint8_t, 256> t{};
    for (int c = 0; c < 256; ++c) {
        const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        const bool digit = c >= '0' && c <= '9';
        const bool unreserved = alpha || digit || in("-._~", c);
        const bool sub_delim = in("!$&'()*+,;=", c);
        std::uint8_t v = 0;
        if (alpha || digit || in("!#$%&'*+-.^_`|~", c)) v |= tchar;
        if (c == '\t' || (c >= 0x20 && c != 0x7f)) v |= field_char;
        if (unreserved || sub_delim || in(":/?[]@%", c)) v |= uri_char;
        if (digit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) v |= hex_digit;
        if (unreserved || sub_delim) v |= reg_name;
        if (alpha || digit || in("+-.", c)) v |= scheme_char;
        t[static_cast<std::size_t>(c)] = v;
    }
    return t;
}

inline constexpr std::array<std::uint8_t, 256> table = make_table();

constexpr bool is(char c, Class cls) noexcept {
    return (table[static_cast<unsigned char>(c)] & cls) != 0;
}

constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
constexpr bool is_alpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
constexpr bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }

constexpr int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

constexpr char to_lower(char c) noexcept {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// Case-insensitive comparison against a lower-case literal.
constexpr bool iequals(std::string_view s, std::string_view lower) noexcept {
    if (s.size() != lower.size()) return false;
    for (std::size_t i = 0; i < s.size(); ++i)
        if (to_lower(s[i]) != lower[i]) return false;
    return true;
}

constexpr bool is_token(std::string_view s) noexcept {
    if (s.empty()) return false;
    for (char c : s)
        if (!is(c, tchar)) return false;
    return true;
}

// Strips optional whitespace (SP, HTAB) from both ends.
constexpr std::string_view trim_ows(std::string_view s) noexcept {
    while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
    return s;
}

}  // namespace okserve::http::chars
