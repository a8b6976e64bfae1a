// The request parser, table-driven: each input is also replayed split at every point
// and one byte at a time, always against a guard page (see test_http_support.hpp).
#include <doctest/doctest.h>

#include <string>
#include <string_view>

#include "server/http/parser.hpp"
#include "tests/server/test_http_support.hpp"

using namespace std::string_view_literals;
using okserve::http::Limits;
using okserve::http::RequestParser;
using okserve::http::Status;
using okserve::http::test::all_splits;
using okserve::http::test::drive;

namespace {

struct Case {
    std::string_view input;
    std::string_view expected;  // what drive() reports
};

constexpr std::string_view host = "Host: a\r\n";

const Case valid_cases[] = {
    {"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n", "complete GET 1.1 keep"},
    {"HEAD /index.html?q=1&r=%2F HTTP/1.1\r\nHost: example.com\r\n\r\n", "complete HEAD 1.1 keep"},
    {"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", "complete OPTIONS 1.1 keep"},
    {"GET http://example.com/a?b HTTP/1.1\r\nHost: example.com\r\n\r\n", "complete GET 1.1 keep"},

    {"GET / HTTP/1.0\r\n\r\n", "complete GET 1.0 close"},
    {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "complete GET 1.0 keep"},
    {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", "complete GET 1.0 keep"},
    {"GET / HTTP/1.0\r\nConnection: foo , keep-alive,\r\n\r\n", "complete GET 1.0 keep"},
    {"GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n",
     "complete GET 1.0 close"},
    {"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", "complete GET 1.1 close"},
    {"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, CLOSE\r\n\r\n", "complete GET 1.1 close"},
    {"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n", "complete GET 1.1 keep"},
    {"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", "complete GET 1.1 keep"},
    {"\r\n\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", "complete GET 1.1 keep"},
    {"GET / HTTP/1.1\nHost: a\n\n", "complete GET 1.1 keep"},
    {"GET / HTTP/1.1\r\nHost: a\n\r\n", "complete GET 1.1 keep"},
    {"BREW /pot HTTP/1.1\r\nHost: a\r\n\r\n", "complete other 1.1 keep"},
    {"get / HTTP/1.1\r\nHost: a\r\n\r\n", "complete other 1.1 keep"},
    {"DELETE /x HTTP/1.1\r\nhOsT: a\r\n\r\n", "complete DELETE 1.1 keep"},
    {"PATCH /x HTTP/1.1\r\nHost: a\r\n\r\n", "complete PATCH 1.1 keep"},
    {"TRACE /x HTTP/1.1\r\nHost: a\r\n\r\n", "complete TRACE 1.1 keep"},
    {"GET / HTTP/1.1\r\nHost: a\r\nX-Tab:\tv\tw \r\nX-Obs: caf\xc3\xa9\r\nX-E:\r\n\r\n",
     "complete GET 1.1 keep"},
    {"GET /%41b HTTP/1.1\r\nHost: xn--bcher-kva.example:80\r\n\r\n", "complete GET 1.1 keep"},
    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", "complete POST 1.1 keep"},
    {"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
     "head PUT 1.1 keep body; complete PUT 1.1 keep body"},
    {"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\nhello",
     "head PUT 1.1 keep body; complete PUT 1.1 keep body"},
    {"POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\nab",
     "head POST 1.0 close body; complete POST 1.0 close body"},
    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nConnection: close\r\n\r\nab",
     "head POST 1.1 close body; complete POST 1.1 close body"},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
     "head POST 1.1 keep body; complete POST 1.1 keep body"},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n",
     "head POST 1.1 keep body; complete POST 1.1 keep body"},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
     "5;name=value;flag\r\nhello\r\nA ; q = \"x\\\"y\"\r\n0123456789\r\n"
     "00000000000000000000001\r\n!\r\n0\r\n\r\n",
     "head POST 1.1 keep body; complete POST 1.1 keep body"},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
     "3\r\nabc\r\n0\r\nX-Sum: 1\r\nX-B:\t2 \r\n\r\n",
     "head POST 1.1 keep body; complete POST 1.1 keep body"},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
     "head POST 1.1 keep body; complete POST 1.1 keep body"},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"
     "\r\n0\r\n\r\n",
     "head POST 1.1 keep body; complete POST 1.1 keep body"},
    {"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
     "head POST 1.1 keep body 100; complete POST 1.1 keep body 100"},
    {"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nTransfer-Encoding: chunked\r\n\r\n"
     "1\r\nx\r\n0\r\n\r\n",
     "head POST 1.1 keep body 100; complete POST 1.1 keep body 100"},
    {"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n", "complete GET 1.1 keep"},
    {"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
     "head POST 1.0 close body; complete POST 1.0 close body"},
};

const Case error_cases[] = {
    {"GET\r\n\r\n", "error 400"},
    {"GET /\r\n\r\n", "error 400"},  // HTTP/0.9
    {"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", "error 400"},
    {"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", "error 400"},
    {"GET /  HTTP/1.1\r\nHost: a\r\n\r\n", "error 400"},
    {"GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", "error 400"},
    {"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", "error 400"},
    {" GET / HTTP/1.1\r\nHost: a\r\n\r\n", "error 400"},
    {"GET / http/1.1\r\nHost: a\r\n\r\n", "error 400"},
    {"GET / HTTP/1.10\r\nHost: a\r\n\r\n", "error 400"},
    {"GET / HTTP/1\r\nHost: a\r\n\r\n", "error 400"},
    {"GET / HTTP/1.2\r\nHost: a\r\n\r\n", "error 505"},
    {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", "error 505"},
    {"GET / HTTP/0.9\r\n\r\n", "error 505"},
    {"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "error 505"},
    {"GET * HTTP/1.1\r\nHost: a\r\n\r\n", "error 400"},
    {"GET example.com:80 HTTP/1.1\r\nHost: a\r\n\r\n", "error 400"},
    {"GET a HTTP/1.1\r\nHost: a\r\n\r\n", "error 400"},
    // A well-formed CONNECT is refused (405): a 2xx would open a tunnel.
    {"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", "error 405"},
    {"CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n", "error 405"},
    // An empty Host names no one.
    {"GET / HTTP/1.1\r\nHost:\r\n\r\n", "error 400"},
    {"GET / HTTP/1.1\r\nHost:   \r\n\r\n", "error 400"},
    {"CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", "error 400"},
    {"CONNECT example.com HTTP/1.1\r\nHost: a\r\n\r\n", "error 400"},
    {"CONNECT :443 HTTP/1.1\r\nHost: a\r\n\r\n", "error 400"},
    {"GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n", "error 400"},
    {"GET /a%zz HTTP/1.1\r\nHost: a\r\n\r\n", "error 400"},
    {"GET /a% HTTP/1.1\r\nHost: a\r\n\r\n", "error 400"},
    {"GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n", "error 400"},
    {"GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", "error 400"},
    {"GET / HTTP/1.1\r\n\r\n", "error 400"},
    {"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", "error 400"},
    {"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", "error 400"},
    {"GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", "error 400"},
    {"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", "error 400"},
    {"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", "error 400"},
    {"GET / HTTP/1.1\r\nHost: a@b\r\n\r\n", "error 400"},
    {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", "error 400"},
    {"GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", "error 400"},
    {"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n folded\r\n\r\n", "error 400"},
    {"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tfolded\r\n\r\n", "error 400"},
    {"GET / HTTP/1.1\r\n Host: a\r\n\r\n", "error 400"},
    {"GET / HTTP/1.1\r\nHost: a\r\nBad\x01Name: v\r\n\r\n", "error 400"},
    {"GET / HTTP/1.1\r\nHost: a\r\nBad(Name): v\r\n\r\n", "error 400"},
    {"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\rb\r\n\r\n", "error 400"},
    {"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\0b\r\n\r\n"sv, "error 400"},
    {"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x1f\r\n\r\n", "error 400"},
    {"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x7f\r\n\r\n", "error 400"},
    {"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\r\r\n\r\n", "error 400"},
    {"GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n", "error 400"},
    {"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", "error 400"},
    {"GET / HTTP/1.1\rHost: a\r\n\r\n", "error 400"},
    {"\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", "error 400"},
    {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "error 400"},  // a TLS ClientHello
    {"\0"sv, "error 400"},
    // Body framing.
    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
     "error 400"},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", "error 400"},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", "error 400"},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", "error 400"},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"
     "\r\n",
     "error 400"},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;x=1\r\n\r\n", "error 400"},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", "error 400"},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: foo\r\n\r\n", "error 400"},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: foo, chunked\r\n\r\n", "error 501"},
    {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", "error 400"},
    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", "error 400"},
    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", "error 400"},
    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n", "error 400"},
    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", "error 400"},
    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", "error 400"},
    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", "error 400"},
    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n", "error 400"},
    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n", "error 400"},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n",
     "head POST 1.1 keep body; error 400"},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
     "head POST 1.1 keep body; error 400"},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n",
     "head POST 1.1 keep body; error 400"},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\rX",
     "head POST 1.1 keep body; error 400"},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello0\r\n\r\n",
     "head POST 1.1 keep body; error 400"},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n",
     "head POST 1.1 keep body; error 400"},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n",
     "head POST 1.1 keep body; error 400"},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;\r\nhello\r\n",
     "head POST 1.1 keep body; error 400"},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\"open\r\n",
     "head POST 1.1 keep body; error 400"},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\r\n",
     "head POST 1.1 keep body; error 400"},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n",
     "head POST 1.1 keep body; error 400"},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nBad Trailer\r\n\r\n",
     "head POST 1.1 keep body; error 400"},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: 1\n\r\n",
     "head POST 1.1 keep body; error 400"},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\n",
     "head POST 1.1 keep body; error 400"},
};

void check_every_split(const Case& c) {
    CAPTURE(c.input);
    CHECK(drive(c.input) == c.expected);
    for (const auto& cuts : all_splits(c.input.size())) {
        CAPTURE(cuts.size());
        CAPTURE(cuts.front());
        REQUIRE(drive(c.input, cuts) == c.expected);
    }
}

std::string padded_request(std::size_t total) {
    const std::string start = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: ";
    const std::string end = "\r\n\r\n";
    return start + std::string(total - start.size() - end.size(), 'p') + end;
}

}  // namespace

TEST_SUITE("parser") {

TEST_CASE("valid requests parse alike however they are split") {
    for (const Case& c : valid_cases) check_every_split(c);
}

TEST_CASE("malformed requests get their status however they are split") {
    for (const Case& c : error_cases) check_every_split(c);
}

TEST_CASE("pipelined requests are consumed one by one") {
    const std::string batch = std::string("GET /1 HTTP/1.1\r\nHost: a\r\n\r\n") +
                              "HEAD /2 HTTP/1.1\r\nHost: a\r\n\r\n" +
                              "POST /3 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc" +
                              "PUT /4 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "2\r\nab\r\n0\r\n\r\n" +
                              "GET /5 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    const Case c{batch,
                 "complete GET 1.1 keep; complete HEAD 1.1 keep; head POST 1.1 keep body; "
                 "complete POST 1.1 keep body; head PUT 1.1 keep body; complete PUT 1.1 keep body; "
                 "complete GET 1.1 close"};
    check_every_split(c);
    CHECK(drive(batch + "GET / HT") == std::string(c.expected) + "; left 8");
}

TEST_CASE("a head seen before is recalled, with the verdict it had and the limits of now") {
    using Kind = RequestParser::Kind;
    const auto place = [](std::string_view b) { return okserve::http::test::guarded().place(b); };
    const std::string_view get = "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";
    RequestParser first;
    REQUIRE(first.feed(place(get)).kind == Kind::complete);  // parsed, and remembered

    SUBCASE("the same head again, alone and with the next request behind it") {
        const std::uint64_t before = RequestParser::heads_recalled();
        RequestParser p;
        auto r = p.feed(place(get));
        CHECK(r.kind == Kind::complete);
        CHECK(r.consumed == get.size());
        CHECK(p.request().keep_alive);
        const std::string two = std::string(get) + "GET / HT";
        r = p.feed(place(two));
        CHECK(r.kind == Kind::complete);
        CHECK(r.consumed == get.size());
        CHECK(RequestParser::heads_recalled() == before + 2);
        CHECK(drive(two) == "complete GET 1.1 keep; left 8");
    }
    SUBCASE("one byte more or different is parsed afresh") {
        const std::uint64_t before = RequestParser::heads_recalled();
        CHECK(drive("GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: close\r\n\r\n") ==
              "complete GET 1.1 close");
        CHECK(drive("GET / HTTP/1.1\r\nHost: 127.0.0.1:808\x01\r\n\r\n") == "error 400");
        CHECK(drive("GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\n") == "complete GET 1.1 keep");
        CHECK(RequestParser::heads_recalled() == before);
    }
    SUBCASE("a smaller head limit still gives 431") {
        RequestParser p(Limits{get.size() - 1});
        const auto r = p.feed(place(get));
        CHECK(r.kind == Kind::error);
        CHECK(r.status == Status::header_fields_too_large);
    }
    SUBCASE("a recalled head's body is framed and held to max_body") {
        const std::string put = "PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n";
        CHECK(drive(put + "hello") == "head PUT 1.1 keep body; complete PUT 1.1 keep body");
        const std::uint64_t before = RequestParser::heads_recalled();
        CHECK(drive(put + "hello") == "head PUT 1.1 keep body; complete PUT 1.1 keep body");
        CHECK(drive(put + "hello", {}, Limits{8192, 4}) == "error 413");
        CHECK(RequestParser::heads_recalled() == before + 2);
    }
    SUBCASE("a head that came in pieces is parsed, then remembered") {
        const std::string_view other = "GET /x HTTP/1.1\r\nHost: a\r\n\r\n";
        const std::uint64_t before = RequestParser::heads_recalled();
        CHECK(drive(other, {7, 20}) == "complete GET 1.1 keep");
        CHECK(RequestParser::heads_recalled() == before);
        CHECK(drive(other) == "complete GET 1.1 keep");
        CHECK(RequestParser::heads_recalled() == before + 1);
    }
}

TEST_CASE("a head that is incomplete consumes nothing") {
    const std::string_view full = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    for (std::size_t n = 1; n < full.size(); ++n) {
        CAPTURE(n);
        RequestParser p;
        const auto r = p.feed(okserve::http::test::guarded().place(full.substr(0, n)));
        CHECK(r.kind == RequestParser::Kind::need_more);
        CHECK(r.consumed == 0);
    }
}

TEST_CASE("a bad request line is answered before the rest of the head arrives") {
    struct Case { std::string_view bytes; okserve::http::Status status; };
    const Case cases[] = {
        {"GET /\r\n", okserve::http::Status::bad_request},  // HTTP/0.9: no more lines will come
        {"GET /\n", okserve::http::Status::bad_request},
        {"PRI * HTTP/2.0\r\n", okserve::http::Status::version_not_supported},
        {"GET / HTTP/1.1 extra\r\nHost: a\r\n", okserve::http::Status::bad_request},
    };
    for (const Case& c : cases) {
        CAPTURE(c.bytes);
        RequestParser p;
        const auto r = p.feed(okserve::http::test::guarded().place(c.bytes));
        CHECK(r.kind == RequestParser::Kind::error);
        CHECK(r.status == c.status);
    }
    RequestParser good;  // a good request line alone still waits for its fields
    CHECK(good.feed("GET / HTTP/1.1\r\n").kind == RequestParser::Kind::need_more);
    CHECK(good.feed("GET / HTTP/1.1\r\nHost: a\r\n\r\n").kind == RequestParser::Kind::complete);
}

TEST_CASE("the head limit gives 431, and a head just at the limit passes") {
    CHECK(drive(padded_request(8192)) == "complete GET 1.1 keep");
    CHECK(drive(padded_request(8193)) == "error 431");
    CHECK(drive(padded_request(8193), {8191}) == "error 431");
    CHECK(drive("\r\n" + padded_request(8191)) == "error 431");
    CHECK(drive(std::string(8192, 'A')) == "error 431");
    CHECK(drive(std::string(8191, 'A')) == "left 8191");  // still waiting

    const Limits small{64};
    for (std::size_t size = 60; size <= 66; ++size) {
        CAPTURE(size);
        const std::string request = padded_request(size);
        const std::string expected = size <= 64 ? "complete GET 1.1 keep" : "error 431";
        for (const auto& cuts : all_splits(request.size()))
            REQUIRE(drive(request, cuts, small) == expected);
    }
}

TEST_CASE("431 comes as soon as max_head bytes are held without the head's end") {
    RequestParser p(Limits{32});
    const std::string line = "GET / HTTP/1.1\r\nHost: aaaaaaaaaaaaaaaaaaaa";
    auto r = p.feed(okserve::http::test::guarded().place(std::string_view(line).substr(0, 31)));
    CHECK(r.kind == RequestParser::Kind::need_more);
    r = p.feed(okserve::http::test::guarded().place(std::string_view(line).substr(0, 32)));
    CHECK(r.kind == RequestParser::Kind::error);
    CHECK(r.status == Status::header_fields_too_large);
}

TEST_CASE("trailer and chunk lines are capped by max_head too") {
    const Limits small{64};
    const std::string head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    CHECK(drive(head + "1;" + std::string(70, 'e'), {}, small) ==
          "head POST 1.1 keep body; error 400");
    CHECK(drive(head + "0\r\nX: " + std::string(70, 't'), {}, small) ==
          "head POST 1.1 keep body; error 431");
    // Whole lines too, however they are split: the LF must be within max_head bytes.
    for (const std::size_t size : {64u, 65u}) {
        CAPTURE(size);
        const std::string chunked = head + "1;" + std::string(size - 4, 'e') + "\r\nx\r\n0\r\n\r\n";
        const std::string trailer = head + "0\r\nX: " + std::string(size - 5, 't') + "\r\n\r\n";
        const std::string body = size == 64 ? "complete POST 1.1 keep body" : "error 400";
        const std::string with_trailer = size == 64 ? "complete POST 1.1 keep body" : "error 431";
        for (const auto& cuts : all_splits(chunked.size()))
            REQUIRE(drive(chunked, cuts, small) == "head POST 1.1 keep body; " + body);
        for (const auto& cuts : all_splits(trailer.size()))
            REQUIRE(drive(trailer, cuts, small) == "head POST 1.1 keep body; " + with_trailer);
    }
}

TEST_CASE("max_body gives 413 for a declared or a chunked body over it") {
    const Limits limits{8192, 10};
    CHECK(drive("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789", {},
                limits) == "head POST 1.1 keep body; complete POST 1.1 keep body");
    CHECK(drive("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n", {}, limits) ==
          "error 413");
    CHECK(drive("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                "5\r\n01234\r\n6\r\n",
                {}, limits) == "head POST 1.1 keep body; error 413");
}

TEST_CASE("body bytes are consumed as they arrive, never held") {
    RequestParser p;
    auto feed = [&](std::string_view s) { return p.feed(okserve::http::test::guarded().place(s)); };
    const std::string_view head = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n";
    auto r = feed(head);
    CHECK(r.kind == RequestParser::Kind::head);
    CHECK(r.consumed == head.size());
    CHECK(p.in_body());
    r = feed("0123");
    CHECK(r.kind == RequestParser::Kind::need_more);
    CHECK(r.consumed == 4);
    r = feed("456789GET");
    CHECK(r.kind == RequestParser::Kind::complete);
    CHECK(r.consumed == 6);
    CHECK_FALSE(p.in_body());
}

TEST_CASE("in_request tells an idle connection from one mid-request") {
    RequestParser p;
    auto feed = [&](std::string_view s) { return p.feed(okserve::http::test::guarded().place(s)); };
    CHECK_FALSE(p.in_request());
    feed("\r\n");
    CHECK_FALSE(p.in_request());  // an empty line is not a request yet
    feed("\r\nGE");
    CHECK(p.in_request());
    CHECK_FALSE(p.in_body());
    // The caller presents the unconsumed bytes again, with the new ones appended.
    const auto r = feed("\r\nGET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\n");
    REQUIRE(r.kind == RequestParser::Kind::head);
    CHECK(p.in_request());
    CHECK(p.in_body());
    CHECK(feed("x").kind == RequestParser::Kind::complete);
    CHECK_FALSE(p.in_request());
    CHECK(p.request().method == okserve::http::Method::get);  // still the finished request
}

TEST_CASE("after an error the parser stays failed until reset") {
    RequestParser p;
    auto feed = [&](std::string_view s) { return p.feed(okserve::http::test::guarded().place(s)); };
    const std::string_view good = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    CHECK(feed("GET / HTTP/1.1\r\n\r\n").status == Status::bad_request);
    const auto again = feed(good);
    CHECK(again.kind == RequestParser::Kind::error);
    CHECK(again.status == Status::bad_request);
    p.reset();
    CHECK(feed(good).kind == RequestParser::Kind::complete);
}

TEST_CASE("every method token maps to its Method") {
    using okserve::http::Method;
    const std::pair<std::string_view, Method> methods[] = {
        {"GET", Method::get},         {"HEAD", Method::head},       {"POST", Method::post},
        {"PUT", Method::put},         {"DELETE", Method::delete_},  {"OPTIONS", Method::options},
        {"TRACE", Method::trace},     {"PATCH", Method::patch},     {"PROPFIND", Method::other},
        {"GETS", Method::other},      {"X", Method::other},         {"!#$%&'*+-.^_`|~", Method::other},
    };
    for (const auto& [token, method] : methods) {
        CAPTURE(token);
        RequestParser p;
        const std::string request = std::string(token) + " / HTTP/1.1\r\n" + std::string(host) + "\r\n";
        CHECK(p.feed(okserve::http::test::guarded().place(request)).kind ==
              RequestParser::Kind::complete);
        CHECK(p.request().method == method);
    }
}

}  // TEST_SUITE
