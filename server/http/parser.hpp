// okserve::http request parser: owns HTTP/1.1 request syntax (RFC 9112) and framing.
// Pure bytes in, a result out: it knows nothing of sockets, fds, threads or time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "server/http/status.hpp"

namespace okserve::http {

enum class Method : std::uint8_t { get, head, post, put, delete_, options, connect, trace, patch, other };

struct Limits {
    std::size_t max_head = 8192;  // request line + fields, in bytes; over it: 431. Also
                                  // caps one chunk-size or trailer line.
    std::uint64_t max_body = UINT64_MAX;  // body bytes (chunk data or Content-Length); over it: 413
};

// What the connection needs to know about one request to answer it.
struct Request {
    Method method = Method::other;
    std::uint8_t version_minor = 1;  // HTTP/1.<minor>; only 0 and 1 are accepted
    bool keep_alive = true;          // after RFC 9112 section 9.3 (version + Connection)
    bool expect_continue = false;    // "Expect: 100-continue" and a body follows
    bool has_body = false;           // Content-Length > 0 or chunked
};

// Incremental parser for a stream of requests on one connection.
//
// Contract with the caller (the connection):
//  - feed() is given the bytes received and not yet consumed, oldest first. It returns
//    how many of them it consumed. The caller drops those and presents the rest again,
//    with newer bytes appended, on the next call.
//  - While a head is incomplete, feed() consumes nothing (need_more, consumed = 0):
//    the caller keeps the bytes. The parser remembers how far it has scanned, so
//    presenting the same prefix again costs only the new bytes.
//  - Body bytes are consumed (and so discarded) as they arrive; bodies are never
//    buffered whole.
//  - After `complete` or `error`, request() describes the request (for `error`, as far
//    as it was parsed: version_minor and method may still be defaults).
//  - After `error` the parser is in a failed state: the connection must close.
class RequestParser {
public:
    enum class Kind : std::uint8_t {
        need_more,  // nothing to answer yet; call again with more bytes
        head,       // head complete and a body follows (answer 100 Continue if asked)
        complete,   // a whole request, body included, has been consumed
        error,      // answer `status` and close
    };
    struct Result {
        Kind kind;
        std::size_t consumed;
        Status status;  // meaningful for `error` only
    };

    explicit RequestParser(Limits limits = {}) noexcept : limits_(limits) {}

    Result feed(std::string_view bytes) noexcept;

    const Request& request() const noexcept { return req_; }

    // True once any byte of the current request (its head or its body) has been seen:
    // a connection idle between requests may close silently, one mid-request gets 408.
    bool in_request() const noexcept { return (phase_ == Phase::head && line_started_) || in_body(); }

    // True while the current request's body is being read (after `head`).
    bool in_body() const noexcept { return phase_ >= Phase::body_length && phase_ <= Phase::trailers; }

    // Forget everything; ready for a new connection.
    void reset() noexcept;

    // Heads this thread took from its memory of the last head instead of parsing them
    // (see parser.cpp): a byte-identical head gets the verdict it got before.
    static std::uint64_t heads_recalled() noexcept;

private:
    enum class Phase : std::uint8_t {
        idle,            // no byte of a request yet
        head,            // collecting the head; scanned_ says how far it was searched
        body_length,     // remaining_ bytes of a Content-Length body to discard
        chunk_size,      // expecting a chunk-size line
        chunk_data,      // remaining_ bytes of chunk data to discard
        chunk_data_end,  // expecting the CRLF after chunk data
        trailers,        // expecting trailer fields or the final empty line
        done,            // a request completed; the next feed() starts another
        failed,          // an error was returned; it is returned again
    };

    // One step of body framing: keep going, wait for more bytes, or stop (done/failed).
    enum class Step : std::uint8_t { go, wait, stop };

    Result feed_head(std::string_view bytes) noexcept;
    Result feed_body(std::string_view bytes) noexcept;
    std::size_t find_head_end(std::string_view bytes) noexcept;
    bool skip_empty_lines(std::string_view bytes, std::size_t limit) noexcept;
    Status check_line_early(std::string_view bytes) noexcept;
    Step take_data(std::string_view bytes, std::size_t& at) noexcept;
    Step take_data_end(std::string_view bytes, std::size_t& at) noexcept;
    Step take_chunk_line(std::string_view bytes, std::size_t& at) noexcept;
    Step take_trailer_line(std::string_view bytes, std::size_t& at) noexcept;
    Step take_line(std::string_view bytes, std::size_t& at, std::string_view& line,
                   Status too_long) noexcept;
    Step fail_step(Status status) noexcept;
    Result fail(Status status) noexcept;
    void begin_request() noexcept;

    Limits limits_;
    Request req_{};
    Phase phase_ = Phase::idle;
    Status failure_ = Status::none;
    bool line_started_ = false;  // the request line's first byte has been seen
    bool line_checked_ = false;  // the request line was judged before the head completed
    std::size_t head_start_ = 0;  // where the request line starts (after empty lines)
    std::size_t scanned_ = 0;     // bytes of the current head already searched for its end
    std::uint64_t remaining_ = 0;  // of the current body or chunk
    std::uint64_t body_seen_ = 0;  // chunk data so far, against max_body
};

}  // namespace okserve::http
