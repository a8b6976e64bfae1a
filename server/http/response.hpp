// okserve::http fixed answers: every byte of every answer variant is built once at
// start-up from a ResponseSpec; only the Date field changes at run time.
// Knows nothing of sockets or threads beyond the thread-safe DateCache.
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/http/status.hpp"

namespace okserve::http {

// The configured body, held once for the whole process: copies of the spec, and every
// answer variant (framing x HEAD), share the same bytes. A 2 GiB --body-file costs 2 GiB.
class Body {
public:
    Body(std::string text = "OK\n") : text_(std::make_shared<const std::string>(std::move(text))) {}  // NOLINT
    Body& operator=(std::string text) {
        text_ = std::make_shared<const std::string>(std::move(text));
        return *this;
    }
    std::string_view view() const noexcept { return *text_; }
    std::size_t size() const noexcept { return text_->size(); }
    bool empty() const noexcept { return text_->empty(); }
    friend bool operator==(const Body& a, std::string_view b) noexcept { return a.view() == b; }

private:
    std::shared_ptr<const std::string> text_;
};

// What the user asked the server to answer with (--status, --body, --header, ...).
struct ResponseSpec {
    int status = 200;
    Body body;
    std::string content_type = "text/plain; charset=utf-8";
    std::vector<std::pair<std::string, std::string>> headers;  // extra fields, in order
    bool server_header = false;                                // add "Server: okserve"
};

// How the answer frames the connection (RFC 9112 section 9.3).
enum class Framing : std::uint8_t {
    keep_alive,     // HTTP/1.1 persistent: no Connection field
    keep_alive_10,  // HTTP/1.0 that asked for it: "Connection: keep-alive"
    close,          // "Connection: close"; the server closes after it
};

inline constexpr std::size_t date_length = 29;  // "Sun, 06 Nov 1994 08:49:37 GMT"

// One answer: its head holds a placeholder Date value at date_offset, to be
// overwritten with DateCache's bytes in a copy; the body is shared and immutable.
struct Answer {
    std::string_view head;  // status line, fields, blank line
    std::size_t date_offset = 0;
    std::string_view body;  // empty for HEAD answers and for 100 Continue
    std::size_t size() const noexcept { return head.size() + body.size(); }
};

class Responses {
public:
    // Throws std::invalid_argument with a one-line message for a status outside 200..599, a field name that is not a token, a field value with a control character
    // (CR, LF, NUL, ...), or an extra field the server sets itself (Date, Content-Length,
    // Content-Type, Transfer-Encoding, Connection; Server when server_header is set).
    // 204 and 304 answers carry no body, no Content-Type and no Content-Length; 205
    // carries no body and "Content-Length: 0": the configured body is left out for them.
    // retry_after_s: the Retry-After of the 429 answers (--rate-limit).
    explicit Responses(const ResponseSpec& spec, int retry_after_s = 1);

    Responses(const Responses&) = delete;
    Responses& operator=(const Responses&) = delete;

    // The configured answer. head_only: HEAD gets GET's fields, Content-Length included.
    const Answer& answer(Framing framing, bool head_only) const noexcept;
    // An error answer: short text body, "Connection: close". 503 carries "Retry-After: 1",
    // 405 (CONNECT: okserve opens no tunnels) carries "Allow".
    // For head_only requests the body is left out (Content-Length stays).
    // A status without an error answer of its own (ok, none, ...) gets the 400.
    const Answer& error(Status status, bool head_only = false) const noexcept;
    // 429 Too Many Requests with Retry-After, framed like a normal answer: the connection
    // stays usable (--rate-limit).
    const Answer& limited(Framing framing, bool head_only) const noexcept;
    // "HTTP/1.1 100 Continue\r\n\r\n" (no Date field: date_offset is unused).
    static std::string_view continue_100() noexcept;

private:
    // The statuses error() knows, in the order of errors_; any other status gets 400's.
    static constexpr std::array<Status, 8> error_statuses{
        Status::bad_request, Status::method_not_allowed, Status::request_timeout, Status::content_too_large,
        Status::header_fields_too_large, Status::not_implemented,
        Status::service_unavailable, Status::version_not_supported};

    std::string text_;  // every head and error body, built once; the Answers view into it
    Body body_;         // the configured body, shared with the spec
    std::array<Answer, 6> answers_{};  // [framing * 2 + head_only]
    std::array<Answer, 2 * error_statuses.size()> errors_{};  // [index * 2 + head_only]
    std::array<Answer, 6> limited_{};  // 429s, [framing * 2 + head_only]
};

// The current IMF-fixdate, formatted at most once per second for the whole process and
// readable from any thread without locks (a seqlock over atomic words).
class DateCache {
public:
    // Copies the current date (29 bytes) into out. Refreshes it when the second changed.
    static void copy_to(char* out) noexcept;
    // copy_to as if the clock read `now`: lets tests make threads race on refreshes.
    static void copy_for_second(std::time_t now, char* out) noexcept;
    // Formats t as an IMF-fixdate into out (29 bytes); exposed for tests.
    static void format(std::time_t t, char* out) noexcept;
};

}  // namespace okserve::http
