// okserve::loadgen response checker: owns HTTP/1.1 response syntax and framing, byte by byte.
// Bytes in, a verdict out: it knows nothing of sockets, clocks or where the bytes came from.
#pragma once

#include <cstddef>
#include <cstdint>

namespace okserve::loadgen {

enum class Framing : std::uint8_t {
    need_more,  // every byte was taken; the response is not over yet
    complete,   // one response ended after `consumed` bytes; status() and keep_alive() describe it
    bad,        // malformed, or a length that can't be right; error() says what
};

struct Feed {
    Framing framing;
    std::size_t consumed;  // bytes that belong to this response (less than offered when complete)
};

// Incremental checker for the stream of responses on one connection. It keeps only a few
// counters between calls, never the bytes of a response in progress, so the caller can read into
// one shared buffer and a response may be split at any byte. Several pipelined responses in one
// buffer come out one per feed() call: feed the rest again after `complete`.
//
// One shortcut: the checker is a pure function of the bytes, so it remembers the last head it
// walked whole in one feed() call (status line to blank line, up to `memo_cap` bytes) with the
// verdict it reached. A response whose head is byte for byte the same gets that verdict after
// one memcmp instead of a walk of every byte. A server answering the same request sends the
// same head until its Date changes, so under load almost every head takes the shortcut; the
// first head after a change takes the walk and becomes the new memory.
class ResponseChecker {
public:
    // Starts afresh, for a new connection (the remembered head stays: it is no connection's).
    void reset() noexcept;
    // Responses to HEAD carry no body whatever their headers say.
    void set_head_request(bool head) noexcept {
        if (head != head_request_) memo_.len = 0;  // the same head means another verdict now
        head_request_ = head;
    }
    // How many responses took the shortcut (for tests: the fast path must be the same verdict).
    std::uint64_t remembered() const noexcept { return memo_.hits; }

    Feed feed(const char* data, std::size_t len) noexcept;
    // The peer closed. A body delimited by the close is complete; a half-read response is bad
    // (truncated); nothing in progress gives need_more (a clean close between responses).
    Framing finish() noexcept;

    bool in_progress() const noexcept { return state_ != State::idle && state_ != State::done; }
    int status() const noexcept { return status_; }
    bool keep_alive() const noexcept { return keep_alive_; }
    const char* error() const noexcept { return error_; }

private:
    enum class State : std::uint8_t {
        idle, version, minor, sp_before_code, code, after_code, reason, status_lf,
        line_start, name, value, value_lf, head_lf,
        body_length, body_eof,
        chunk_size, chunk_ext, chunk_size_lf, chunk_data, chunk_data_cr, chunk_data_lf,
        trailer_start, trailer_line, trailer_lf, trailer_end_lf,
        done,
    };
    enum class Field : std::uint8_t { other, content_length, transfer_encoding, connection };

    Framing step(char c) noexcept;
    Framing step_status(char c) noexcept;
    Framing step_header(char c) noexcept;
    Framing step_chunked(char c) noexcept;
    Framing end_of_field() noexcept;
    Framing end_of_head() noexcept;
    Framing fail(const char* why) noexcept;
    void start_response() noexcept;
    bool recall(const char* data, std::size_t len) noexcept;
    void remember(const char* head, std::size_t len) noexcept;

    static constexpr std::size_t max_head = 65536;
    static constexpr std::size_t value_cap = 64;
    static constexpr std::size_t memo_cap = 512;

    // The last head walked whole in one call, and where the walk ended.
    struct Memo {
        std::size_t len = 0;        // 0: nothing remembered
        std::uint64_t hits = 0;
        std::uint64_t body = 0;     // Content-Length after it (0: complete at the head)
        std::uint16_t status = 0;
        bool keep_alive = true;
        char head[memo_cap] = {};
    };

    State state_ = State::idle;
    Field field_ = Field::other;
    bool head_request_ = false;
    bool keep_alive_ = true;
    bool has_length_ = false;
    bool chunked_ = false;
    bool te_seen_ = false;
    bool conn_close_ = false;
    bool conn_keep_alive_ = false;
    bool final_head_ = false;     // end_of_head() reached a verdict worth remembering
    std::uint8_t minor_ = 1;
    std::uint8_t pos_ = 0;        // position inside "HTTP/1." or the status code
    std::uint16_t status_ = 0;
    std::size_t head_bytes_ = 0;
    std::size_t name_len_ = 0;
    std::size_t value_len_ = 0;
    std::uint64_t length_ = 0;    // Content-Length, then the chunk size being read
    std::uint64_t remaining_ = 0; // body or chunk bytes still to come
    const char* error_ = "";
    char name_[20] = {};
    char value_[value_cap] = {};
    Memo memo_;
};

}  // namespace okserve::loadgen
