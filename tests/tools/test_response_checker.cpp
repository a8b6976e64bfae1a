// Response checker: good, pipelined, split at every byte, chunked, truncated, wrong length,
// malformed heads and non-2xx answers. Inputs end at a PROT_NONE page, so a read past the end
// faults even without a sanitizer.
#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <string_view>
#include <sys/mman.h>
#include <unistd.h>

#include "tools/loadgen/response_checker.hpp"

using okserve::loadgen::Feed;
using okserve::loadgen::Framing;
using okserve::loadgen::ResponseChecker;

namespace {

// A copy of the bytes that ends exactly where an inaccessible page begins.
class GuardedBytes {
public:
    explicit GuardedBytes(std::string_view bytes) {
        const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
        size_ = (bytes.size() / page + 2) * page;
        base_ = static_cast<char*>(mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        REQUIRE(base_ != MAP_FAILED);
        REQUIRE(mprotect(base_ + size_ - page, page, PROT_NONE) == 0);
        data_ = base_ + size_ - page - bytes.size();
        std::memcpy(data_, bytes.data(), bytes.size());
    }
    ~GuardedBytes() { munmap(base_, size_); }
    GuardedBytes(const GuardedBytes&) = delete;
    GuardedBytes& operator=(const GuardedBytes&) = delete;
    const char* data() const { return data_; }

private:
    char* base_ = nullptr;
    char* data_ = nullptr;
    std::size_t size_ = 0;
};

struct Outcome {
    int complete = 0;     // responses completed
    bool bad = false;
    int last_status = 0;
    bool last_keep_alive = false;
};

// Feeds `bytes` in pieces of at most `piece` bytes (0 = all at once), then reports what happened.
Outcome run(std::string_view bytes, std::size_t piece, bool eof = false, bool head = false) {
    GuardedBytes guarded(bytes);
    ResponseChecker checker;
    checker.set_head_request(head);
    Outcome out;
    std::size_t at = 0;
    while (at < bytes.size() && !out.bad) {
        std::size_t len = piece == 0 ? bytes.size() - at : std::min(piece, bytes.size() - at);
        const char* p = guarded.data() + at;
        at += len;
        while (len > 0) {
            const Feed f = checker.feed(p, len);
            REQUIRE(f.consumed <= len);
            if (f.framing == Framing::bad) {
                out.bad = true;
                break;
            }
            if (f.framing == Framing::complete) {
                ++out.complete;
                out.last_status = checker.status();
                out.last_keep_alive = checker.keep_alive();
            } else {
                REQUIRE(f.consumed == len);
            }
            p += f.consumed;
            len -= f.consumed;
        }
    }
    if (eof && !out.bad) {
        const Framing f = checker.finish();
        out.bad = f == Framing::bad;
        if (f == Framing::complete) {
            ++out.complete;
            out.last_status = checker.status();
            out.last_keep_alive = checker.keep_alive();
        }
    }
    return out;
}

constexpr std::string_view ok = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nOK\n";

}  // namespace

TEST_SUITE("loadgen") {

TEST_CASE("response checker accepts good responses whole, split anywhere and byte by byte") {
    const struct { std::string_view bytes; int complete; int status; bool keep_alive; bool eof; bool head; } cases[] = {
        {ok, 1, 200, true, false, false},
        {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 1, 200, true, false, false},
        {"HTTP/1.1 204 No Content\r\n\r\n", 1, 204, true, false, false},
        {"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nhi", 1, 200, true, false, false},
        {"HTTP/1.1 200 OK\r\ncontent-length:   5  \r\nCONNECTION: Close\r\n\r\nhello", 1, 200, false, false, false},
        {"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nOK\n", 1, 200, false, false, false},
        {"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nOK\n", 1, 200, true, false, false},
        {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", 1, 200, true, false, true},  // HEAD
        {"HTTP/1.1 200 OK\r\n\r\nuntil the close", 1, 200, false, true, false},
        {"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", 1, 200, true, false, false},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nOK\n\r\n0\r\n\r\n", 1, 200, true, false, false},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
         "a;name=value\r\n0123456789\r\n1\r\nx\r\n0\r\nTrailer: yes\r\n\r\n", 1, 200, true, false, false},
        {"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nOK\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
         "HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 3, 202, true, false, false},
    };
    for (const auto& c : cases) {
        CAPTURE(c.bytes);
        for (std::size_t piece = 0; piece <= c.bytes.size(); ++piece) {
            CAPTURE(piece);
            const Outcome out = run(c.bytes, piece, c.eof, c.head);
            REQUIRE_FALSE(out.bad);
            REQUIRE(out.complete == c.complete);
            REQUIRE(out.last_status == c.status);
            REQUIRE(out.last_keep_alive == c.keep_alive);
        }
    }
}

TEST_CASE("response checker: every two-piece split of a pipelined stream gives every response") {
    const std::string stream = std::string(ok) + std::string(ok) + std::string(ok);
    for (std::size_t split = 0; split <= stream.size(); ++split) {
        CAPTURE(split);
        ResponseChecker checker;
        int complete = 0;
        for (std::string_view part : {std::string_view(stream).substr(0, split), std::string_view(stream).substr(split)}) {
            while (!part.empty()) {
                const Feed f = checker.feed(part.data(), part.size());
                REQUIRE(f.framing != Framing::bad);
                complete += f.framing == Framing::complete ? 1 : 0;
                part.remove_prefix(f.consumed);
            }
        }
        CHECK(complete == 3);
        CHECK(checker.finish() == Framing::need_more);  // a clean close between responses
    }
}

TEST_CASE("response checker rejects malformed and truncated responses") {
    const struct { std::string_view bytes; bool eof; std::string_view why; } cases[] = {
        {"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", false, "version"},
        {"http/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, "lower-case HTTP"},
        {"HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n", false, "two-digit status"},
        {"HTTP/1.1 600 Odd\r\nContent-Length: 0\r\n\r\n", false, "status 600"},
        {"HTTP/1.1 200OK\r\nContent-Length: 0\r\n\r\n", false, "no space after the code"},
        {"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", false, "bare LF"},
        {"HTTP/1.1 200 OK\r\nContent-Length 3\r\n\r\nOK\n", false, "header without colon"},
        {"HTTP/1.1 200 OK\r\n Content-Length: 3\r\n\r\nOK\n", false, "folded line"},
        {"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n", false, "non-numeric length"},
        {"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false, "negative length"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nOK\n", false, "conflicting lengths"},
        {"HTTP/1.1 200 OK\r\nX-Bad: a\x01z\r\nContent-Length: 0\r\n\r\n", false, "control char in value"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nOK", true, "truncated body"},
        {"HTTP/1.1 200 OK\r\nContent-Len", true, "truncated head"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK\n", false, "body longer than Content-Length"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nOK\n\r\n0\r\n\r\n", false, "chunk too long"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false, "bad chunk size"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nOK", true, "truncated chunk"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.why);
        for (std::size_t piece : {std::size_t{0}, std::size_t{1}, std::size_t{7}}) {
            CAPTURE(piece);
            CHECK(run(c.bytes, piece, c.eof).bad);
        }
    }
}

TEST_CASE("response checker reports non-2xx status and Connection: close on error answers") {
    const struct { std::string_view bytes; int status; bool keep_alive; } cases[] = {
        {"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 503, false},
        {"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope", 404, true},
        {"HTTP/1.1 301 Moved\r\nConnection: keep-alive, Upgrade\r\nContent-Length: 0\r\n\r\n", 301, true},
    };
    for (const auto& c : cases) {
        CAPTURE(c.bytes);
        const Outcome out = run(c.bytes, 0);
        CHECK_FALSE(out.bad);
        CHECK(out.complete == 1);
        CHECK(out.last_status == c.status);
        CHECK(out.last_keep_alive == c.keep_alive);
    }
}

TEST_CASE("response checker reset() forgets a half-read response") {
    ResponseChecker checker;
    const std::string_view half = ok.substr(0, 20);
    CHECK(checker.feed(half.data(), half.size()).framing == Framing::need_more);
    CHECK(checker.in_progress());
    checker.reset();
    CHECK_FALSE(checker.in_progress());
    const Feed f = checker.feed(ok.data(), ok.size());
    CHECK(f.framing == Framing::complete);
    CHECK(f.consumed == ok.size());
}

TEST_CASE("response checker: a head it has walked before gets the same verdict without the walk") {
    // Feeds one response that starts at data[0]; returns the verdict and the bytes it took.
    const auto one = [](ResponseChecker& checker, std::string_view bytes) {
        GuardedBytes guarded(bytes);
        return checker.feed(guarded.data(), bytes.size());
    };
    ResponseChecker checker;

    SUBCASE("identical heads, back to back in one buffer") {
        const std::string stream = std::string(ok) + std::string(ok) + std::string(ok);
        std::string_view rest = stream;
        int complete = 0;
        while (!rest.empty()) {
            const Feed f = one(checker, rest);
            REQUIRE(f.framing == Framing::complete);
            CHECK(f.consumed == ok.size());
            CHECK(checker.status() == 200);
            CHECK(checker.keep_alive());
            ++complete;
            rest.remove_prefix(f.consumed);
        }
        CHECK(complete == 3);
        CHECK(checker.remembered() == 2);
    }
    SUBCASE("a remembered head whose body is split across reads") {
        REQUIRE(one(checker, ok).framing == Framing::complete);
        const std::string_view first = ok.substr(0, ok.size() - 2);
        CHECK(one(checker, first).framing == Framing::need_more);
        CHECK(checker.in_progress());
        const Feed f = one(checker, ok.substr(ok.size() - 2));
        CHECK(f.framing == Framing::complete);
        CHECK(f.consumed == 2);
        CHECK(checker.remembered() == 1);
    }
    SUBCASE("the bytes after a remembered response are still checked") {
        REQUIRE(one(checker, ok).framing == Framing::complete);
        const std::string stream = std::string(ok) + "XTTP/1.1 200 OK\r\n\r\n";
        const Feed f = one(checker, stream);
        REQUIRE(f.framing == Framing::complete);
        CHECK(checker.remembered() == 1);
        CHECK(one(checker, std::string_view(stream).substr(f.consumed)).framing == Framing::bad);
    }
    SUBCASE("one byte of difference takes the walk, and a bad byte still fails") {
        REQUIRE(one(checker, ok).framing == Framing::complete);
        const std::string_view longer = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\nOK!\n";
        Feed f = one(checker, longer);
        CHECK(f.framing == Framing::complete);
        CHECK(f.consumed == longer.size());
        CHECK(checker.remembered() == 0);
        const std::string_view bad = "HTTP/1.1 200 OK\r\nContent-Type: text/plai\x01\r\nContent-Length: 4\r\n\r\nOK!\n";
        CHECK(one(checker, bad).framing == Framing::bad);
        CHECK(checker.remembered() == 0);
    }
    SUBCASE("a head split across reads is walked, not remembered") {
        CHECK(one(checker, ok.substr(0, 10)).framing == Framing::need_more);
        CHECK(one(checker, ok.substr(10)).framing == Framing::complete);
        CHECK(one(checker, ok).framing == Framing::complete);  // walked whole: remembered now
        CHECK(checker.remembered() == 0);
        CHECK(one(checker, ok).framing == Framing::complete);
        CHECK(checker.remembered() == 1);
    }
    SUBCASE("the memory outlives reset(), not a change to HEAD") {
        const std::string_view head_ok = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
        const std::string body_ok = std::string(head_ok) + "0123456789";
        REQUIRE(one(checker, body_ok).framing == Framing::complete);
        checker.reset();
        Feed f = one(checker, body_ok);
        CHECK(f.framing == Framing::complete);
        CHECK(f.consumed == body_ok.size());
        CHECK(checker.remembered() == 1);
        // For HEAD the same head carries no body: the remembered verdict no longer holds.
        checker.set_head_request(true);
        f = one(checker, head_ok);
        CHECK(f.framing == Framing::complete);
        CHECK(f.consumed == head_ok.size());
        CHECK(checker.remembered() == 1);
        f = one(checker, head_ok);
        CHECK(f.framing == Framing::complete);
        CHECK(checker.remembered() == 2);
    }
    SUBCASE("an interim answer and its final one are remembered together") {
        const std::string_view both = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx";
        for (int i = 0; i < 2; ++i) {
            const Feed f = one(checker, both);
            CHECK(f.framing == Framing::complete);
            CHECK(f.consumed == both.size());
            CHECK(checker.status() == 201);
            CHECK_FALSE(checker.keep_alive());
        }
        CHECK(checker.remembered() == 1);
    }
    SUBCASE("a head with no length, delimited by the close, is never remembered") {
        const std::string_view eof = "HTTP/1.1 200 OK\r\n\r\nbody";
        for (int i = 0; i < 2; ++i) {
            checker.reset();
            CHECK(one(checker, eof).framing == Framing::need_more);
            CHECK(checker.finish() == Framing::complete);
        }
        CHECK(checker.remembered() == 0);
    }
}

}  // TEST_SUITE
