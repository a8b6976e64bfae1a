#include "tools/loadgen/response_checker.hpp"

#include <algorithm>
#include <cstring>
#include <string_view>

namespace okserve::loadgen {

namespace {

bool is_tchar(char c) noexcept {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        return true;
    }
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_ctl(char c) noexcept {
    const auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && c != '\t') || u == 0x7f;
}

char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool equals_lower(std::string_view text, std::string_view lower_word) noexcept {
    if (text.size() != lower_word.size()) {
        return false;
    }
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (lower(text[i]) != lower_word[i]) {
            return false;
        }
    }
    return true;
}

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// Calls fn on each comma-separated token of a field value, trimmed.
template <typename Fn>
void for_each_token(std::string_view value, Fn fn) {
    while (!value.empty()) {
        const std::size_t comma = value.find(',');
        fn(trim(value.substr(0, comma)));
        if (comma == std::string_view::npos) {
            break;
        }
        value.remove_prefix(comma + 1);
    }
}

}  // namespace

void ResponseChecker::reset() noexcept {
    const bool head = head_request_;
    const Memo memo = memo_;
    *this = ResponseChecker{};
    head_request_ = head;
    memo_ = memo;
}

void ResponseChecker::start_response() noexcept {
    state_ = State::version;
    field_ = Field::other;
    keep_alive_ = true;
    has_length_ = chunked_ = te_seen_ = conn_close_ = conn_keep_alive_ = false;
    minor_ = 1;
    pos_ = 0;
    status_ = 0;
    final_head_ = false;
    head_bytes_ = name_len_ = value_len_ = 0;
    length_ = remaining_ = 0;
    error_ = "";
}

Framing ResponseChecker::fail(const char* why) noexcept {
    error_ = why;
    state_ = State::done;
    return Framing::bad;
}

bool ResponseChecker::recall(const char* data, std::size_t len) noexcept {
    if (memo_.len == 0 || len < memo_.len || std::memcmp(data, memo_.head, memo_.len) != 0) {
        return false;
    }
    ++memo_.hits;
    status_ = memo_.status;
    keep_alive_ = memo_.keep_alive;
    remaining_ = length_ = memo_.body;
    has_length_ = memo_.body != 0;
    state_ = memo_.body != 0 ? State::body_length : State::done;
    return true;
}

void ResponseChecker::remember(const char* head, std::size_t len) noexcept {
    if (len > memo_cap) {
        return;
    }
    std::memcpy(memo_.head, head, len);
    memo_.len = len;
    memo_.status = status_;
    memo_.keep_alive = keep_alive_;
    memo_.body = state_ == State::body_length ? remaining_ : 0;
}

Feed ResponseChecker::feed(const char* data, std::size_t len) noexcept {
    // The head can be remembered only when this call holds it from its first byte.
    bool whole_head = false;
    if (len > 0 && (state_ == State::idle || state_ == State::done)) {
        start_response();
        if (recall(data, len)) {
            if (state_ == State::done) {
                return {Framing::complete, memo_.len};
            }
            const std::uint64_t take = std::min<std::uint64_t>(remaining_, len - memo_.len);
            remaining_ -= take;
            if (remaining_ == 0) {
                state_ = State::done;
                return {Framing::complete, memo_.len + static_cast<std::size_t>(take)};
            }
            return {Framing::need_more, len};
        }
        whole_head = true;
    }
    std::size_t i = 0;
    while (i < len) {
        if (state_ == State::body_length || state_ == State::chunk_data) {
            // The body is the bulk of the bytes: skip it whole instead of byte by byte.
            const std::uint64_t take = std::min<std::uint64_t>(remaining_, len - i);
            i += static_cast<std::size_t>(take);
            remaining_ -= take;
            if (remaining_ == 0) {
                if (state_ == State::body_length) {
                    state_ = State::done;
                    return {Framing::complete, i};
                }
                state_ = State::chunk_data_cr;
            }
            continue;
        }
        if (state_ == State::body_eof) {
            return {Framing::need_more, len};
        }
        if (state_ == State::value && field_ == Field::other) {
            // A field we don't interpret: a tight scan to its end of line, checking only that it
            // holds no control characters.
            std::size_t end = i;
            while (end < len && (!is_ctl(data[end]) || data[end] == '\t') && data[end] != '\r') {
                ++end;
            }
            head_bytes_ += end - i;
            i = end;
            if (head_bytes_ > max_head) {
                return {fail("response head too large"), i};
            }
            if (i < len) {
                if (data[i] != '\r') {
                    return {fail("control character in a header value"), i + 1};
                }
                state_ = State::value_lf;
                ++i;
            }
            continue;
        }
        const Framing f = step(data[i]);
        ++i;
        if (final_head_) {
            final_head_ = false;
            if (whole_head) {
                remember(data, i);
            }
        }
        if (f == Framing::complete) {
            state_ = State::done;
            return {Framing::complete, i};
        }
        if (f == Framing::bad) {
            return {Framing::bad, i};
        }
    }
    return {Framing::need_more, len};
}

Framing ResponseChecker::finish() noexcept {
    if (state_ == State::body_eof) {
        state_ = State::done;
        keep_alive_ = false;
        return Framing::complete;
    }
    if (in_progress()) {
        return fail("connection closed before the response was complete");
    }
    return Framing::need_more;
}

Framing ResponseChecker::step(char c) noexcept {
    if (state_ <= State::status_lf) {
        return step_status(c);
    }
    if (state_ <= State::head_lf) {
        if (++head_bytes_ > max_head) {
            return fail("response head too large");
        }
        return step_header(c);
    }
    return step_chunked(c);
}

Framing ResponseChecker::step_status(char c) noexcept {
    static constexpr std::string_view prefix = "HTTP/1.";
    switch (state_) {
    case State::version:
        if (c != prefix[pos_]) return fail("status line does not start with HTTP/1.");
        if (++pos_ == prefix.size()) state_ = State::minor;
        return Framing::need_more;
    case State::minor:
        if (c < '0' || c > '9') return fail("bad HTTP version");
        minor_ = static_cast<std::uint8_t>(c - '0');
        state_ = State::sp_before_code;
        return Framing::need_more;
    case State::sp_before_code:
        if (c != ' ') return fail("no space after the HTTP version");
        state_ = State::code;
        pos_ = 0;
        return Framing::need_more;
    case State::code:
        if (c < '0' || c > '9' || (pos_ == 0 && (c < '1' || c > '5'))) return fail("bad status code");
        status_ = static_cast<std::uint16_t>(status_ * 10 + (c - '0'));
        if (++pos_ == 3) state_ = State::after_code;
        return Framing::need_more;
    case State::after_code:
        if (c == ' ') state_ = State::reason;
        else if (c == '\r') state_ = State::status_lf;
        else return fail("bad status code");
        return Framing::need_more;
    case State::reason:
        if (c == '\r') state_ = State::status_lf;
        else if (is_ctl(c)) return fail("control character in the reason phrase");
        return Framing::need_more;
    default:  // status_lf
        if (c != '\n') return fail("status line not ended by CRLF");
        state_ = State::line_start;
        return Framing::need_more;
    }
}

Framing ResponseChecker::step_header(char c) noexcept {
    switch (state_) {
    case State::line_start:
        if (c == '\r') {
            state_ = State::head_lf;
        } else if (is_tchar(c)) {
            name_[0] = lower(c);
            name_len_ = 1;
            state_ = State::name;
        } else {
            return fail("bad header field name");
        }
        return Framing::need_more;
    case State::name:
        if (c == ':') {
            const std::string_view name(name_, std::min(name_len_, sizeof name_));
            field_ = name_len_ > sizeof name_    ? Field::other
                     : name == "content-length"    ? Field::content_length
                     : name == "transfer-encoding" ? Field::transfer_encoding
                     : name == "connection"        ? Field::connection
                                                   : Field::other;
            value_len_ = 0;
            state_ = State::value;
        } else if (!is_tchar(c)) {
            return fail("bad header field name");
        } else {
            if (name_len_ < sizeof name_) name_[name_len_] = lower(c);
            ++name_len_;
        }
        return Framing::need_more;
    case State::value:
        if (c == '\r') {
            state_ = State::value_lf;
        } else if (is_ctl(c)) {
            return fail("control character in a header value");
        } else if (value_len_ > 0 || (c != ' ' && c != '\t')) {
            if (value_len_ < value_cap) value_[value_len_] = c;
            ++value_len_;
        }
        return Framing::need_more;
    case State::value_lf:
        if (c != '\n') return fail("header line not ended by CRLF");
        state_ = State::line_start;
        return end_of_field();
    default:  // head_lf
        if (c != '\n') return fail("header section not ended by CRLF");
        return end_of_head();
    }
}

Framing ResponseChecker::end_of_field() noexcept {
    const Field field = field_;
    field_ = Field::other;
    if (field == Field::other) {
        return Framing::need_more;
    }
    const std::string_view value = trim(std::string_view(value_, std::min(value_len_, value_cap)));
    if (field == Field::content_length) {
        if (value.empty() || value.size() > 18) return fail("bad Content-Length");
        std::uint64_t n = 0;
        for (char c : value) {
            if (c < '0' || c > '9') return fail("bad Content-Length");
            n = n * 10 + static_cast<std::uint64_t>(c - '0');
        }
        if (has_length_ && n != length_) return fail("conflicting Content-Length");
        has_length_ = true;
        length_ = n;
    } else if (field == Field::transfer_encoding) {
        te_seen_ = true;
        for_each_token(value, [this](std::string_view t) { chunked_ = equals_lower(t, "chunked"); });
    } else {
        for_each_token(value, [this](std::string_view t) {
            conn_close_ = conn_close_ || equals_lower(t, "close");
            conn_keep_alive_ = conn_keep_alive_ || equals_lower(t, "keep-alive");
        });
    }
    return Framing::need_more;
}

Framing ResponseChecker::end_of_head() noexcept {
    if (status_ >= 100 && status_ < 200 && status_ != 101) {
        // An interim answer (100 Continue): the real one follows on the same stream.
        start_response();
        return Framing::need_more;
    }
    keep_alive_ = minor_ >= 1 ? !conn_close_ : (conn_keep_alive_ && !conn_close_);
    if (status_ == 101) {
        keep_alive_ = false;
        return Framing::complete;
    }
    if (head_request_ || status_ == 204 || status_ == 304) {
        final_head_ = true;
        return Framing::complete;
    }
    if (te_seen_) {
        if (!chunked_) {
            keep_alive_ = false;
            state_ = State::body_eof;
            return Framing::need_more;
        }
        length_ = 0;
        pos_ = 0;
        state_ = State::chunk_size;
        return Framing::need_more;
    }
    if (!has_length_) {
        keep_alive_ = false;
        state_ = State::body_eof;
        return Framing::need_more;
    }
    remaining_ = length_;
    state_ = State::body_length;
    final_head_ = true;
    return length_ == 0 ? Framing::complete : Framing::need_more;
}

Framing ResponseChecker::step_chunked(char c) noexcept {
    switch (state_) {
    case State::chunk_size: {
        const int d = hex_value(c);
        if (d >= 0) {
            if (++pos_ > 15) return fail("chunk size too large");
            length_ = length_ * 16 + static_cast<std::uint64_t>(d);
        } else if (pos_ > 0 && (c == ';' || c == ' ' || c == '\t')) {
            state_ = State::chunk_ext;
        } else if (pos_ > 0 && c == '\r') {
            state_ = State::chunk_size_lf;
        } else {
            return fail("bad chunk size");
        }
        return Framing::need_more;
    }
    case State::chunk_ext:
        if (c == '\r') state_ = State::chunk_size_lf;
        else if (is_ctl(c)) return fail("control character in a chunk extension");
        return Framing::need_more;
    case State::chunk_size_lf:
        if (c != '\n') return fail("chunk size line not ended by CRLF");
        remaining_ = length_;
        state_ = length_ == 0 ? State::trailer_start : State::chunk_data;
        return Framing::need_more;
    case State::chunk_data_cr:
        if (c != '\r') return fail("chunk longer than its size");
        state_ = State::chunk_data_lf;
        return Framing::need_more;
    case State::chunk_data_lf:
        if (c != '\n') return fail("chunk not ended by CRLF");
        length_ = 0;
        pos_ = 0;
        state_ = State::chunk_size;
        return Framing::need_more;
    case State::trailer_start:
        state_ = c == '\r' ? State::trailer_end_lf : State::trailer_line;
        return is_ctl(c) && c != '\r' ? fail("bad trailer field") : Framing::need_more;
    case State::trailer_line:
        if (c == '\r') state_ = State::trailer_lf;
        else if (is_ctl(c)) return fail("control character in a trailer field");
        return Framing::need_more;
    case State::trailer_lf:
        if (c != '\n') return fail("trailer line not ended by CRLF");
        state_ = State::trailer_start;
        return Framing::need_more;
    case State::trailer_end_lf:
        if (c != '\n') return fail("chunked body not ended by CRLF");
        return Framing::complete;
    default:
        return fail("internal: unexpected state");
    }
}

}  // namespace okserve::loadgen
