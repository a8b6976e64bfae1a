// Fixed answers byte by byte, spec validation, the Date format and the Date cache
// under concurrent readers and writers.
#include <doctest/doctest.h>

#include <atomic>
#include <ctime>
#include <functional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "server/http/response.hpp"

using okserve::http::Answer;
using okserve::http::DateCache;
using okserve::http::date_length;
using okserve::http::Framing;
using okserve::http::ResponseSpec;
using okserve::http::Responses;
using okserve::http::Status;

namespace {

std::string whole(const Answer& a) { return std::string(a.head) + std::string(a.body); }

// The value of one field in a head, or "<none>".
std::string field(std::string_view head, std::string_view name) {
    const std::string key = "\r\n" + std::string(name) + ": ";
    const std::size_t at = head.find(key);
    if (at == std::string_view::npos) return "<none>";
    const std::size_t from = at + key.size();
    return std::string(head.substr(from, head.find("\r\n", from) - from));
}

std::string date_of(std::time_t t) {
    char out[date_length];
    DateCache::format(t, out);
    return {out, date_length};
}

// Checks what every answer shares: status line, placeholder Date at date_offset,
// Content-Length equal to GET's body, a head ending in an empty line.
void check_answer(const Answer& get, const Answer& head_only, std::string_view status_line) {
    CAPTURE(get.head);
    CHECK(get.head.substr(0, status_line.size()) == status_line);
    CHECK(get.head.substr(get.date_offset, date_length) == "Thu, 01 Jan 1970 00:00:00 GMT");
    CHECK(get.head.substr(get.date_offset - 8, 8) == "\r\nDate: ");
    CHECK(get.head.substr(get.head.size() - 4) == "\r\n\r\n");
    CHECK(field(get.head, "Content-Length") == std::to_string(get.body.size()));
    CHECK(get.size() == get.head.size() + get.body.size());
    CHECK(head_only.head == get.head);
    CHECK(head_only.date_offset == get.date_offset);
    CHECK(head_only.body.empty());
}

}  // namespace

TEST_SUITE("response") {

TEST_CASE("the default answer, byte by byte, in every framing") {
    const Responses r(ResponseSpec{});
    const std::string common =
        "HTTP/1.1 200 OK\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\n";
    CHECK(whole(r.answer(Framing::keep_alive, false)) == common + "\r\nOK\n");
    CHECK(whole(r.answer(Framing::keep_alive_10, false)) ==
          common + "Connection: keep-alive\r\n\r\nOK\n");
    CHECK(whole(r.answer(Framing::close, false)) == common + "Connection: close\r\n\r\nOK\n");
    for (Framing f : {Framing::keep_alive, Framing::keep_alive_10, Framing::close})
        check_answer(r.answer(f, false), r.answer(f, true), "HTTP/1.1 200 OK\r\n");
}

TEST_CASE("Server and the user's fields come after the framing fields, in order") {
    ResponseSpec spec;
    spec.status = 404;
    spec.body = "nothing here";
    spec.content_type = "application/json";
    spec.server_header = true;
    spec.headers = {{"X-B", "2"}, {"X-A", "  1 "}, {"Cache-Control", "no-store"}};
    const Responses r(spec);
    CHECK(whole(r.answer(Framing::close, false)) ==
          "HTTP/1.1 404 Not Found\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\n"
          "Content-Type: application/json\r\nContent-Length: 12\r\nConnection: close\r\n"
          "Server: okserve\r\nX-B: 2\r\nX-A: 1\r\nCache-Control: no-store\r\n\r\nnothing here");
    CHECK(field(r.error(Status::bad_request).head, "Server") == "okserve");
    CHECK(field(r.error(Status::bad_request).head, "X-B") == "<none>");
}

TEST_CASE("an empty body has no Content-Type but Content-Length: 0") {
    ResponseSpec spec;
    spec.body = "";
    const Responses r(spec);
    const Answer& a = r.answer(Framing::keep_alive, false);
    CHECK(field(a.head, "Content-Type") == "<none>");
    CHECK(field(a.head, "Content-Length") == "0");
}

TEST_CASE("204 and 304 carry no body, Content-Type or Content-Length") {
    for (int code : {204, 304}) {
        CAPTURE(code);
        ResponseSpec spec;
        spec.status = code;
        const Responses r(spec);
        for (Framing f : {Framing::keep_alive, Framing::keep_alive_10, Framing::close}) {
            const Answer& a = r.answer(f, false);
            CHECK(a.body.empty());
            CHECK(field(a.head, "Content-Length") == "<none>");
            CHECK(field(a.head, "Content-Type") == "<none>");
            CHECK(r.answer(f, true).head == a.head);
        }
    }
}

TEST_CASE("205 carries no body, and says so with Content-Length: 0") {
    ResponseSpec spec;
    spec.status = 205;
    spec.body = "ignored";
    const Responses r(spec);
    for (Framing f : {Framing::keep_alive, Framing::keep_alive_10, Framing::close}) {
        for (bool head_only : {false, true}) {
            const Answer& a = r.answer(f, head_only);
            CHECK(a.body.empty());
            CHECK(field(a.head, "Content-Length") == "0");
            CHECK(field(a.head, "Content-Type") == "<none>");
        }
    }
}

TEST_CASE("any final status 200..599 is accepted; an unregistered one has an empty reason") {
    for (int code : {200, 207, 226, 299, 425, 599}) {
        CAPTURE(code);
        ResponseSpec spec;
        spec.status = code;
        const Responses r(spec);
        const std::string line(r.answer(Framing::keep_alive, false).head.substr(0, 13));
        CHECK(line == "HTTP/1.1 " + std::to_string(code) + " ");
    }
    ResponseSpec spec;
    spec.status = 299;
    CHECK(Responses(spec).answer(Framing::keep_alive, false).head.substr(0, 15) == "HTTP/1.1 299 \r\n");
    spec.status = 207;
    CHECK(Responses(spec).answer(Framing::keep_alive, false).head.substr(0, 26) == "HTTP/1.1 207 Multi-Status\r");
}

TEST_CASE("the body is held once: every variant views the same bytes as the spec") {
    ResponseSpec spec;
    spec.body = std::string(1 << 20, 'z');
    const ResponseSpec copy = spec;  // a copy of the spec shares the bytes too
    const Responses r(copy);
    const char* bytes = spec.body.view().data();
    for (Framing f : {Framing::keep_alive, Framing::keep_alive_10, Framing::close}) {
        CHECK(r.answer(f, false).body.data() == bytes);
        CHECK(r.answer(f, false).body.size() == std::size_t{1} << 20);
    }
}

TEST_CASE("405 (the answer to CONNECT) says which methods are allowed") {
    const Responses r(ResponseSpec{});
    const Answer& a = r.error(Status::method_not_allowed);
    CHECK(a.head.substr(0, 33) == "HTTP/1.1 405 Method Not Allowed\r\n");
    CHECK(field(a.head, "Allow").find("GET, HEAD") == 0);
    CHECK(field(a.head, "Connection") == "close");
}

TEST_CASE("every error answer closes, with a short body and its HEAD form") {
    ResponseSpec spec;
    spec.body = "configured";
    const Responses r(spec);
    const std::pair<Status, std::string_view> errors[] = {
        {Status::bad_request, "400 Bad Request"},
        {Status::method_not_allowed, "405 Method Not Allowed"},
        {Status::request_timeout, "408 Request Timeout"},
        {Status::content_too_large, "413 Content Too Large"},
        {Status::header_fields_too_large, "431 Request Header Fields Too Large"},
        {Status::not_implemented, "501 Not Implemented"},
        {Status::service_unavailable, "503 Service Unavailable"},
        {Status::version_not_supported, "505 HTTP Version Not Supported"},
    };
    for (const auto& [status, line] : errors) {
        CAPTURE(line);
        const Answer& get = r.error(status);
        check_answer(get, r.error(status, true), "HTTP/1.1 " + std::string(line) + "\r\n");
        CHECK(get.body == std::string(line.substr(4)) + "\n");
        CHECK(field(get.head, "Connection") == "close");
        CHECK(field(get.head, "Content-Type") == "text/plain; charset=utf-8");
        CHECK(field(get.head, "Retry-After") == (status == Status::service_unavailable ? "1" : "<none>"));
    }
    CHECK(r.error(Status::ok).head == r.error(Status::bad_request).head);
}

TEST_CASE("100 Continue is a bare status line") {
    CHECK(Responses::continue_100() == "HTTP/1.1 100 Continue\r\n\r\n");
}

TEST_CASE("invalid specs throw a one-line invalid_argument") {
    struct Bad {
        const char* what;
        std::function<void(ResponseSpec&)> change;
    };
    const Bad cases[] = {
        {"status 99", [](ResponseSpec& s) { s.status = 99; }},
        {"status 600", [](ResponseSpec& s) { s.status = 600; }},
        {"status 100", [](ResponseSpec& s) { s.status = 100; }},
        {"status 101", [](ResponseSpec& s) { s.status = 101; }},
        {"name with a space", [](ResponseSpec& s) { s.headers = {{"X Y", "v"}}; }},
        {"empty name", [](ResponseSpec& s) { s.headers = {{"", "v"}}; }},
        {"name with a colon", [](ResponseSpec& s) { s.headers = {{"X:Y", "v"}}; }},
        {"value with CRLF", [](ResponseSpec& s) { s.headers = {{"X", "a\r\nInjected: 1"}}; }},
        {"value with LF", [](ResponseSpec& s) { s.headers = {{"X", "a\nb"}}; }},
        {"value with NUL", [](ResponseSpec& s) { s.headers = {{"X", std::string("a\0b", 3)}}; }},
        {"Content-Length", [](ResponseSpec& s) { s.headers = {{"content-length", "1"}}; }},
        {"Transfer-Encoding", [](ResponseSpec& s) { s.headers = {{"Transfer-Encoding", "x"}}; }},
        {"Connection", [](ResponseSpec& s) { s.headers = {{"CONNECTION", "close"}}; }},
        {"Date", [](ResponseSpec& s) { s.headers = {{"Date", "x"}}; }},
        {"Content-Type", [](ResponseSpec& s) { s.headers = {{"Content-Type", "x"}}; }},
        {"Server twice", [](ResponseSpec& s) { s.server_header = true; s.headers = {{"Server", "x"}}; }},
        {"content type with CR", [](ResponseSpec& s) { s.content_type = "text/plain\r"; }},
    };
    for (const Bad& c : cases) {
        CAPTURE(c.what);
        ResponseSpec spec;
        c.change(spec);
        try {
            Responses r(spec);
            FAIL("no exception");
        } catch (const std::invalid_argument& e) {
            const std::string message = e.what();
            CHECK_FALSE(message.empty());
            CHECK(message.find('\n') == std::string::npos);
        }
    }
    ResponseSpec fine;
    fine.headers = {{"Server", "other"}};  // allowed while server_header is off
    CHECK_NOTHROW(Responses{fine});
}

TEST_CASE("reason phrases") {
    CHECK(okserve::http::reason_phrase(200) == "OK");
    CHECK(okserve::http::reason_phrase(413) == "Content Too Large");
    CHECK(okserve::http::reason_phrase(431) == "Request Header Fields Too Large");
    CHECK(okserve::http::reason_phrase(299).empty());
    CHECK(okserve::http::reason_phrase(-1).empty());
}

TEST_CASE("IMF-fixdate for known timestamps") {
    const std::pair<std::time_t, std::string_view> dates[] = {
        {0, "Thu, 01 Jan 1970 00:00:00 GMT"},
        {784111777, "Sun, 06 Nov 1994 08:49:37 GMT"},
        {951782400, "Tue, 29 Feb 2000 00:00:00 GMT"},
        {1700000000, "Tue, 14 Nov 2023 22:13:20 GMT"},
        {4102444799, "Thu, 31 Dec 2099 23:59:59 GMT"},
        {253402300799, "Fri, 31 Dec 9999 23:59:59 GMT"},
    };
    for (const auto& [t, text] : dates) {
        CAPTURE(t);
        CHECK(date_of(t) == text);
    }
}

TEST_CASE("DateCache gives the current date") {
    const std::time_t before = std::time(nullptr);
    char out[date_length];
    DateCache::copy_to(out);
    const std::time_t after = std::time(nullptr);
    const std::string got(out, date_length);
    // The coarse clock may trail time() by a tick, so allow the second before.
    CHECK((got == date_of(before - 1) || got == date_of(before) || got == date_of(after)));
}

TEST_CASE("DateCache never tears while threads race to refresh it") {
    // Each thread asks for one of three seconds in turn, so refreshes collide with reads
    // all the time; a copy must always be one of the three whole dates.
    const std::time_t base = 1700000000;
    const std::set<std::string> valid = {date_of(base), date_of(base + 1), date_of(base + 2)};
    // The cache is global and still holds the real date from earlier tests. A reader that
    // loses a refresh race is handed the date already cached (a second old is fine), so
    // start from one of the three: then any whole date outside them is a real tear.
    char first[date_length];
    DateCache::copy_for_second(base, first);
    REQUIRE(std::string(first, date_length) == date_of(base));
    std::atomic<int> torn{0};
    std::atomic<int> copies{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            char out[date_length];
            for (int i = 0; i < 3000; ++i) {
                DateCache::copy_for_second(base + (i / 7 + t) % 3, out);
                if (valid.count(std::string(out, date_length)) == 0) torn.fetch_add(1);
                copies.fetch_add(1);
            }
        });
    }
    for (auto& th : threads) th.join();
    CHECK(torn.load() == 0);
    CHECK(copies.load() == 4 * 3000);
    char out[date_length];
    DateCache::copy_to(out);  // back to the real clock for whoever runs next
}

}  // TEST_SUITE
