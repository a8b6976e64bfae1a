// okserve::http status codes the server can answer with, and their reason phrases.
// Knows nothing of parsing or sockets.
#pragma once

#include <cstdint>
#include <string_view>

namespace okserve::http {

enum class Status : std::uint16_t {
    none = 0,
    continue_ = 100,
    ok = 200,
    bad_request = 400,
    method_not_allowed = 405,
    request_timeout = 408,
    content_too_large = 413,
    too_many_requests = 429,
    header_fields_too_large = 431,
    not_implemented = 501,
    service_unavailable = 503,
    version_not_supported = 505,
};

// Reason phrase for any standard code (RFC 9110 section 15), or "" when unknown.
std::string_view reason_phrase(int code) noexcept;

}  // namespace okserve::http
