// Builds every answer's bytes once at start-up, and keeps the Date value current for
// all threads with a seqlock that readers never block on.
#include "server/http/response.hpp"

#include <cstring>
#include <stdexcept>
#include <thread>
#include <vector>
#include <time.h>

#include "server/http/chars.hpp"

namespace okserve::http {
namespace {

// A valid date, so that an answer sent without its Date overwritten is still legal.
constexpr std::string_view date_placeholder = "Thu, 01 Jan 1970 00:00:00 GMT";
static_assert(date_placeholder.size() == date_length);

// Where one answer lies in Responses::text_; turned into an Answer once text_ is final.
struct Span {
    std::size_t head_begin = 0;
    std::size_t head_size = 0;
    std::size_t date_offset = 0;
    std::size_t body_begin = 0;
    std::size_t body_size = 0;
};

// The fields of one answer's head, in the order they are written.
struct HeadFields {
    int code = 200;
    std::string_view content_type;  // empty: no Content-Type field
    bool content_length = true;     // false for 204 and 304
    std::size_t body_size = 0;      // GET's body size, also announced to HEAD
    std::string_view connection;    // empty: no Connection field
    bool server = false;
    std::string_view extra;         // rendered "Name: value\r\n" lines
};

// Appends one head to text; returns the date's offset inside that head.
std::size_t append_head(std::string& text, const HeadFields& f) {
    const std::size_t begin = text.size();
    text += "HTTP/1.1 " + std::to_string(f.code) + ' ';
    text += reason_phrase(f.code);
    text += "\r\nDate: ";
    const std::size_t date_offset = text.size() - begin;
    text += date_placeholder;
    text += "\r\n";
    const auto field = [&text](std::string_view name, std::string_view value) {
        text.append(name).append(": ").append(value).append("\r\n");
    };
    if (!f.content_type.empty()) field("Content-Type", f.content_type);
    if (f.content_length) field("Content-Length", std::to_string(f.body_size));
    if (!f.connection.empty()) field("Connection", f.connection);
    if (f.server) text += "Server: okserve\r\n";
    text += f.extra;
    text += "\r\n";
    return date_offset;
}

[[noreturn]] void reject(const std::string& what) { throw std::invalid_argument(what); }

void check_value(std::string_view what, std::string_view value) {
    for (char c : value)
        if (!chars::is(c, chars::field_char))
            reject(std::string(what) + ": value contains a control character (CR, LF, NUL, ...)");
}

// Any final status code: 1xx are interim answers (a final one must follow), and HTTP has
// no codes past 599 (RFC 9110 15). A code without a registered reason phrase gets an
// empty one, which RFC 9112 4 allows: "HTTP/1.1 299 ".
void check_status(int code) {
    if (code >= 100 && code < 200)
        reject("status " + std::to_string(code) + " is informational, not a final answer (use 200..599)");
    if (code < 200 || code > 599) reject("status " + std::to_string(code) + " is not in 200..599");
}

// Fields the server writes itself: a second copy would contradict the first.
bool reserved_name(std::string_view name, bool server_header) {
    for (std::string_view r : {"date", "content-length", "content-type", "transfer-encoding",
                               "connection"})
        if (chars::iequals(name, r)) return true;
    return server_header && chars::iequals(name, "server");
}

std::string render_extra(const ResponseSpec& spec) {
    std::string out;
    for (const auto& [name, raw_value] : spec.headers) {
        if (!chars::is_token(name)) reject("header name \"" + name + "\" is not a token");
        if (reserved_name(name, spec.server_header))
            reject("header \"" + name + "\" is set by the server and cannot be configured");
        const std::string_view value = chars::trim_ows(raw_value);
        check_value("header \"" + name + "\"", value);
        out.append(name).append(": ").append(value).append("\r\n");
    }
    return out;
}

Answer to_answer(const std::string& text, const Span& s) {
    const std::string_view all = text;
    return Answer{all.substr(s.head_begin, s.head_size), s.date_offset,
                  all.substr(s.body_begin, s.body_size)};
}

// Appends one head; the span's body is set by the caller.
Span append_span(std::string& text, const HeadFields& f) {
    Span s;
    s.head_begin = text.size();
    s.date_offset = append_head(text, f);
    s.head_size = text.size() - s.head_begin;
    return s;
}

// The configured answer for each Framing, GET then HEAD: [framing * 2 + head_only].
// The body is not copied into text: Responses views the spec's shared Body.
std::vector<Span> append_answers(std::string& text, const ResponseSpec& spec,
                                 std::string_view extra) {
    const bool no_length = spec.status == 204 || spec.status == 304;  // RFC 9110 8.6
    const bool no_body = no_length || spec.status == 205;              // RFC 9110 15.3.6
    const std::size_t body_size = no_body ? 0 : spec.body.size();
    const std::string_view type = body_size == 0 ? "" : chars::trim_ows(spec.content_type);
    std::vector<Span> spans;
    for (std::string_view connection : {"", "keep-alive", "close"}) {
        const HeadFields f{spec.status, type, !no_length, body_size, connection,
                           spec.server_header, extra};
        for (bool head_only : {false, true}) {
            Span s = append_span(text, f);
            s.body_size = head_only ? 0 : body_size;
            spans.push_back(s);
        }
    }
    return spans;
}

// One head twice, for GET and for HEAD (the same fields; HEAD's span has no body), with a
// body of f.body_size bytes already in text at body_begin.
void append_get_and_head(std::string& text, const HeadFields& f, std::size_t body_begin, std::vector<Span>& spans) {
    for (bool head_only : {false, true}) {
        Span s = append_span(text, f);
        s.body_begin = body_begin;
        s.body_size = head_only ? 0 : f.body_size;
        spans.push_back(s);
    }
}

// Each error answer, GET then HEAD: a "<reason>\n" body, and the connection closes.
template <std::size_t N>
std::vector<Span> append_errors(std::string& text, const std::array<Status, N>& statuses,
                                bool server) {
    std::vector<Span> spans;
    for (Status status : statuses) {
        const int code = static_cast<int>(status);
        const std::size_t body_begin = text.size();
        text.append(reason_phrase(code)).append("\n");
        const std::size_t size = text.size() - body_begin;
        const std::string_view extra = code == 503 ? "Retry-After: 1\r\n"
                                     : code == 405 ? "Allow: GET, HEAD, POST, PUT, DELETE, OPTIONS, TRACE, PATCH\r\n"
                                                   : "";
        append_get_and_head(text, {code, "text/plain; charset=utf-8", true, size, "close", server, extra}, body_begin,
                            spans);
    }
    return spans;
}

// 429 for each Framing, GET then HEAD: unlike the errors it keeps the connection open.
std::vector<Span> append_limited(std::string& text, int retry_after_s, bool server) {
    const std::size_t body_begin = text.size();
    text.append(reason_phrase(429)).append("\n");
    const std::size_t size = text.size() - body_begin;
    const std::string extra = "Retry-After: " + std::to_string(retry_after_s) + "\r\n";
    std::vector<Span> spans;
    for (std::string_view connection : {"", "keep-alive", "close"}) {
        append_get_and_head(text, {429, "text/plain; charset=utf-8", true, size, connection, server, extra}, body_begin,
                            spans);
    }
    return spans;
}

}  // namespace

Responses::Responses(const ResponseSpec& spec, int retry_after_s) : body_(spec.body) {
    check_status(spec.status);
    check_value("content type", spec.content_type);
    const std::string extra = render_extra(spec);
    // text_ only grows while spans are recorded; views are taken once it is final.
    const std::vector<Span> spans = append_answers(text_, spec, extra);
    const std::vector<Span> error_spans = append_errors(text_, error_statuses, spec.server_header);
    const std::vector<Span> limited_spans = append_limited(text_, retry_after_s, spec.server_header);
    for (std::size_t i = 0; i < answers_.size(); ++i) {
        answers_[i] = to_answer(text_, spans[i]);
        answers_[i].body = body_.view().substr(0, spans[i].body_size);
    }
    for (std::size_t i = 0; i < errors_.size(); ++i) errors_[i] = to_answer(text_, error_spans[i]);
    for (std::size_t i = 0; i < limited_.size(); ++i) limited_[i] = to_answer(text_, limited_spans[i]);
}

const Answer& Responses::limited(Framing framing, bool head_only) const noexcept {
    return limited_[static_cast<std::size_t>(framing) * 2 + (head_only ? 1 : 0)];
}

const Answer& Responses::answer(Framing framing, bool head_only) const noexcept {
    return answers_[static_cast<std::size_t>(framing) * 2 + (head_only ? 1 : 0)];
}

const Answer& Responses::error(Status status, bool head_only) const noexcept {
    std::size_t index = 0;  // 400 unless the status has its own answer
    for (std::size_t i = 0; i < error_statuses.size(); ++i)
        if (error_statuses[i] == status) index = i;
    return errors_[index * 2 + (head_only ? 1 : 0)];
}

std::string_view Responses::continue_100() noexcept { return "HTTP/1.1 100 Continue\r\n\r\n"; }

// ---- Date ----------------------------------------------------------------------

namespace {

// A seqlock: seq is odd while one writer refreshes the words. Every field is atomic,
// so a reader racing the writer reads stale or mixed words, never undefined behaviour,
// and the second look at seq throws mixed reads away. Release stores and acquire loads
// of the words (plain moves on x86) do the ordering that fences usually do: a reader
// that sees a new word also sees the odd seq written before it. ThreadSanitizer does
// not model standalone fences, so this form is also the one it can check.
struct DateState {
    std::atomic<std::uint32_t> seq{0};
    std::atomic<std::int64_t> second{-1};  // -1: never formatted
    std::array<std::atomic<std::uint64_t>, 4> words{};
};
static_assert(4 * sizeof(std::uint64_t) >= date_length);

constinit DateState date_state;

std::int64_t coarse_now() noexcept {
    timespec ts{};
    // The coarse clock reads the kernel's last tick from the vDSO: no syscall, and a
    // few milliseconds of error is nothing next to a one-second resolution.
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return ts.tv_sec;
}

// Becomes the one writer for this second if seq still equals `seen`; writes the date
// into out as well. Returns false when another thread got there first.
bool try_publish(std::uint32_t seen, std::int64_t now, char* out) noexcept {
    if (!date_state.seq.compare_exchange_strong(seen, seen + 1, std::memory_order_relaxed))
        return false;
    char text[4 * sizeof(std::uint64_t)] = {};
    DateCache::format(static_cast<std::time_t>(now), text);
    for (std::size_t i = 0; i < date_state.words.size(); ++i) {
        std::uint64_t w = 0;
        std::memcpy(&w, text + i * sizeof w, sizeof w);
        date_state.words[i].store(w, std::memory_order_release);
    }
    date_state.second.store(now, std::memory_order_release);
    date_state.seq.store(seen + 2, std::memory_order_release);
    std::memcpy(out, text, date_length);
    return true;
}

}  // namespace

void DateCache::copy_to(char* out) noexcept { copy_for_second(coarse_now(), out); }

void DateCache::copy_for_second(std::time_t now_t, char* out) noexcept {
    const auto now = static_cast<std::int64_t>(now_t);
    for (;;) {
        const std::uint32_t seq = date_state.seq.load(std::memory_order_acquire);
        if (seq % 2 == 0) {
            std::uint64_t words[4];
            for (std::size_t i = 0; i < 4; ++i)
                words[i] = date_state.words[i].load(std::memory_order_acquire);
            const std::int64_t second = date_state.second.load(std::memory_order_acquire);
            if (date_state.seq.load(std::memory_order_relaxed) == seq) {
                if (second == now) {
                    std::memcpy(out, words, date_length);
                    return;
                }
                if (try_publish(seq, now, out)) return;
                if (second >= 0) {
                    // Another thread is refreshing it: a date a second old is still fine.
                    std::memcpy(out, words, date_length);
                    return;
                }
            }
        }
        std::this_thread::yield();  // a writer is mid-update: it takes nanoseconds
    }
}

void DateCache::format(std::time_t t, char* out) noexcept {
    static constexpr char days[] = "SunMonTueWedThuFriSat";
    static constexpr char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    std::tm tm{};
    gmtime_r(&t, &tm);
    const auto put2 = [](char* p, int v) {
        p[0] = static_cast<char>('0' + v / 10 % 10);
        p[1] = static_cast<char>('0' + v % 10);
    };
    std::memcpy(out, days + 3 * tm.tm_wday, 3);
    std::memcpy(out + 3, ", ", 2);
    put2(out + 5, tm.tm_mday);
    out[7] = ' ';
    std::memcpy(out + 8, months + 3 * tm.tm_mon, 3);
    out[11] = ' ';
    const int year = tm.tm_year + 1900;
    put2(out + 12, year / 100);
    put2(out + 14, year % 100);
    out[16] = ' ';
    put2(out + 17, tm.tm_hour);
    out[19] = ':';
    put2(out + 20, tm.tm_min);
    out[22] = ':';
    put2(out + 23, tm.tm_sec);
    std::memcpy(out + 25, " GMT", 4);
}

}  // namespace okserve::http
