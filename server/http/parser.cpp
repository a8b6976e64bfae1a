// The request parser's state machine: finding the head's end across reads, then
// discarding the body as it streams (Content-Length or chunked, RFC 9112 6 and 7).
#include "server/http/parser.hpp"

#include <algorithm>
#include <cstring>

#include "server/http/chars.hpp"
#include "server/http/syntax.hpp"

namespace okserve::http {

using Kind = RequestParser::Kind;

namespace {

// The last head this thread parsed whole, and what it said. Parsing is a pure function of
// the bytes, so a head that is byte for byte the same gets the same verdict from one
// memcmp. Load generators and health checkers send one request again and again; a browser
// sends heads that differ, and then the memory costs one failed compare and one copy.
// One per thread, not per connection: idle connections hold no copy of anything.
struct HeadMemo {
    static constexpr std::size_t cap = 512;
    std::size_t len = 0;  // 0: nothing remembered
    std::uint64_t recalled = 0;
    syntax::Head head;
    char bytes[cap];
};

thread_local HeadMemo memo;

// Under a smaller max_head the same bytes could be a 431: only a head within the limit
// is recalled (find_head_end finds an end at or below the limit, never past it).
bool recall(std::string_view bytes, std::size_t max_head, syntax::Head& head) noexcept {
    if (memo.len == 0 || memo.len > bytes.size() || memo.len > max_head ||
        std::memcmp(bytes.data(), memo.bytes, memo.len) != 0)
        return false;
    head = memo.head;
    ++memo.recalled;
    return true;
}

void remember(std::string_view bytes, const syntax::Head& head) noexcept {
    if (bytes.size() > HeadMemo::cap) return;
    std::memcpy(memo.bytes, bytes.data(), bytes.size());
    memo.len = bytes.size();
    memo.head = head;
}

}  // namespace

RequestParser::Result RequestParser::feed(std::string_view bytes) noexcept {
    switch (phase_) {
    case Phase::failed:
        return {Kind::error, 0, failure_};
    case Phase::done:
        begin_request();
        [[fallthrough]];
    case Phase::idle:
    case Phase::head:
        return feed_head(bytes);
    default:
        return feed_body(bytes);
    }
}

std::uint64_t RequestParser::heads_recalled() noexcept { return memo.recalled; }

void RequestParser::reset() noexcept {
    begin_request();
    failure_ = Status::none;
}

void RequestParser::begin_request() noexcept {
    req_ = Request{};
    phase_ = Phase::idle;
    line_started_ = line_checked_ = false;
    head_start_ = scanned_ = 0;
    remaining_ = body_seen_ = 0;
}

RequestParser::Result RequestParser::fail(Status status) noexcept {
    phase_ = Phase::failed;
    failure_ = status;
    return {Kind::error, 0, status};
}

RequestParser::Result RequestParser::feed_head(std::string_view bytes) noexcept {
    if (bytes.empty()) return {Kind::need_more, 0, Status::none};
    syntax::Head head;
    std::size_t end = 0;
    // A fresh start whose bytes begin with the remembered head: same end, same verdict.
    const bool fresh = phase_ == Phase::idle;
    phase_ = Phase::head;
    if (fresh && recall(bytes, limits_.max_head, head)) {
        end = memo.len;
        line_started_ = true;
        req_ = head.request;
    } else {
        end = find_head_end(bytes);
        if (phase_ == Phase::failed) return {Kind::error, 0, failure_};
        if (end == 0) {
            if (bytes.size() >= limits_.max_head) return fail(Status::header_fields_too_large);
            if (const Status s = check_line_early(bytes); s != Status::ok) return fail(s);
            return {Kind::need_more, 0, Status::none};
        }
        const Status status = syntax::parse_head(bytes.substr(head_start_, end - head_start_), head);
        req_ = head.request;
        if (status != Status::ok) return fail(status);
        // From a fresh start these bytes give this head whether they came in one read or
        // many (scanning resumes without changing its outcome), so they can be remembered.
        remember(bytes.substr(0, end), head);
    }
    switch (head.framing) {
    case syntax::BodyFraming::none:
        phase_ = Phase::done;
        return {Kind::complete, end, Status::none};
    case syntax::BodyFraming::length:
        if (head.content_length > limits_.max_body) return fail(Status::content_too_large);
        phase_ = Phase::body_length;
        remaining_ = head.content_length;
        break;
    case syntax::BodyFraming::chunked:
        phase_ = Phase::chunk_size;
        break;
    }
    return {Kind::head, end, Status::none};
}

// A head still incomplete may already hold a whole request line. Judge it now: a client
// that sent `GET /` (HTTP/0.9) waits for an answer, not for more fields, and must not be
// left to the header timeout. Done once per request, and only for heads split across reads.
Status RequestParser::check_line_early(std::string_view bytes) noexcept {
    if (line_checked_ || !line_started_) return Status::ok;
    const std::size_t lf = bytes.find('\n', head_start_);
    if (lf == std::string_view::npos) return Status::ok;
    line_checked_ = true;
    return syntax::check_request_line(bytes.substr(head_start_, lf + 1 - head_start_));
}

// Empty lines before the request line are ignored (RFC 9112 2.2). The request line
// must then start with a method character: a TLS handshake or other garbage gets its
// 400 at once rather than after max_head bytes. Returns true once the line has started.
bool RequestParser::skip_empty_lines(std::string_view bytes, std::size_t limit) noexcept {
    std::size_t i = scanned_;
    while (i < limit) {
        if (bytes[i] == '\n') ++i;
        else if (bytes[i] == '\r' && i + 1 < limit && bytes[i + 1] == '\n') i += 2;
        else break;
    }
    scanned_ = i;
    if (i == limit || (bytes[i] == '\r' && i + 1 == limit)) return false;
    if (!chars::is(bytes[i], chars::tchar)) {
        fail(Status::bad_request);
        return false;
    }
    line_started_ = true;
    head_start_ = i;
    return true;
}

// Returns the head's length, through the LF of the empty line that ends it, or 0 while
// it has not arrived within max_head bytes. Resumes where the previous call stopped,
// so a head arriving a byte at a time costs O(n) in total, not O(n^2).
std::size_t RequestParser::find_head_end(std::string_view bytes) noexcept {
    const std::size_t limit = std::min(bytes.size(), limits_.max_head);
    if (!line_started_ && !skip_empty_lines(bytes, limit)) return 0;
    std::size_t i = scanned_;
    while (i < limit) {
        const void* hit = std::memchr(bytes.data() + i, '\n', limit - i);
        if (hit == nullptr) break;
        const auto lf = static_cast<std::size_t>(static_cast<const char*>(hit) - bytes.data());
        // The line after this LF is empty: LF LF, or LF CR LF.
        if (lf + 1 < limit && bytes[lf + 1] == '\n') return lf + 2;
        if (lf + 2 < limit && bytes[lf + 1] == '\r' && bytes[lf + 2] == '\n') return lf + 3;
        if (lf + 1 == limit || (lf + 2 == limit && bytes[lf + 1] == '\r')) {
            scanned_ = lf;  // cannot tell yet: look at this LF again next time
            return 0;
        }
        i = lf + 1;
    }
    scanned_ = limit;
    return 0;
}

RequestParser::Result RequestParser::feed_body(std::string_view bytes) noexcept {
    std::size_t at = 0;
    for (;;) {
        Step step = Step::stop;
        switch (phase_) {
        case Phase::body_length:
        case Phase::chunk_data: step = take_data(bytes, at); break;
        case Phase::chunk_data_end: step = take_data_end(bytes, at); break;
        case Phase::chunk_size: step = take_chunk_line(bytes, at); break;
        case Phase::trailers: step = take_trailer_line(bytes, at); break;
        default: break;
        }
        if (step == Step::wait) return {Kind::need_more, at, Status::none};
        if (step == Step::stop) {
            if (phase_ == Phase::failed) return {Kind::error, at, failure_};
            return {Kind::complete, at, Status::none};
        }
    }
}

RequestParser::Step RequestParser::fail_step(Status status) noexcept {
    fail(status);
    return Step::stop;
}

// Discards body bytes: they are consumed, never copied.
RequestParser::Step RequestParser::take_data(std::string_view bytes, std::size_t& at) noexcept {
    const auto n = std::min<std::uint64_t>(remaining_, bytes.size() - at);
    at += static_cast<std::size_t>(n);
    remaining_ -= n;
    if (remaining_ > 0) return Step::wait;
    if (phase_ == Phase::body_length) {
        phase_ = Phase::done;
        return Step::stop;
    }
    phase_ = Phase::chunk_data_end;
    return Step::go;
}

// Chunk data must be followed by CRLF; anything else means the sizes lied.
RequestParser::Step RequestParser::take_data_end(std::string_view bytes,
                                                 std::size_t& at) noexcept {
    const std::size_t avail = bytes.size() - at;
    if (avail == 0) return Step::wait;
    if (bytes[at] != '\r') return fail_step(Status::bad_request);
    if (avail == 1) return Step::wait;
    if (bytes[at + 1] != '\n') return fail_step(Status::bad_request);
    at += 2;
    phase_ = Phase::chunk_size;
    return Step::go;
}

// A line inside the body. Unlike the head, the body's framing accepts only CRLF: the
// stricter the framing, the less room for two parsers to disagree on where it ends.
RequestParser::Step RequestParser::take_line(std::string_view bytes, std::size_t& at,
                                             std::string_view& line, Status too_long) noexcept {
    const std::string_view rest = bytes.substr(at);
    // The LF must come within max_head bytes, whether the line arrived whole or in pieces.
    const std::size_t lf = rest.substr(0, limits_.max_head).find('\n');
    if (lf == std::string_view::npos)
        return rest.size() >= limits_.max_head ? fail_step(too_long) : Step::wait;
    if (lf == 0 || rest[lf - 1] != '\r') return fail_step(Status::bad_request);
    line = rest.substr(0, lf - 1);
    at += lf + 1;
    return Step::go;
}

RequestParser::Step RequestParser::take_chunk_line(std::string_view bytes,
                                                   std::size_t& at) noexcept {
    std::string_view line;
    const Step step = take_line(bytes, at, line, Status::bad_request);
    if (step != Step::go) return step;
    std::uint64_t size = 0;
    if (!syntax::parse_chunk_line(line, size)) return fail_step(Status::bad_request);
    if (size == 0) {
        phase_ = Phase::trailers;
        return Step::go;
    }
    if (size > limits_.max_body - body_seen_) return fail_step(Status::content_too_large);
    body_seen_ += size;
    remaining_ = size;
    phase_ = Phase::chunk_data;
    return Step::go;
}

RequestParser::Step RequestParser::take_trailer_line(std::string_view bytes,
                                                     std::size_t& at) noexcept {
    std::string_view line;
    const Step step = take_line(bytes, at, line, Status::header_fields_too_large);
    if (step != Step::go) return step;
    if (line.empty()) {
        phase_ = Phase::done;
        return Step::stop;
    }
    std::string_view name;
    std::string_view value;
    if (!syntax::split_field_line(line, name, value)) return fail_step(Status::bad_request);
    return Step::go;
}

}  // namespace okserve::http
