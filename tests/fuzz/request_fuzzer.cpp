// Fuzz target for the request parser. Built with -DOKSERVE_FUZZER it is a libFuzzer
// harness (build line in docs/http.md); otherwise it is a unit test replaying the corpus.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "server/http/parser.hpp"

namespace {

using okserve::http::Limits;
using okserve::http::RequestParser;
using okserve::http::Status;
using Kind = RequestParser::Kind;

struct FuzzOutcome {
    bool sane = true;
    int completes = 0;
    Status error = Status::none;
};

bool is_parser_error(Status s) {
    return s == Status::bad_request || s == Status::method_not_allowed || s == Status::content_too_large ||
           s == Status::header_fields_too_large || s == Status::not_implemented ||
           s == Status::version_not_supported;
}

// Plays the connection: the input arrives in two pieces, split where its first byte
// says, and every result must keep the contract in parser.hpp.
FuzzOutcome fuzz_one(std::string_view input) {
    FuzzOutcome out;
    const std::size_t split =
        input.empty() ? 0 : static_cast<unsigned char>(input[0]) % (input.size() + 1);
    RequestParser parser(Limits{512, 1 << 20});  // small, so the limit paths are reachable
    std::string pending;
    for (std::string_view piece : {input.substr(0, split), input.substr(split)}) {
        pending.append(piece);
        for (;;) {
            const auto r = parser.feed(pending);
            if (r.consumed > pending.size()) return {false, out.completes, r.status};
            pending.erase(0, r.consumed);
            if (r.kind == Kind::need_more) break;
            if (r.kind == Kind::error) {
                out.error = r.status;
                out.sane = is_parser_error(r.status) && parser.feed(pending).kind == Kind::error;
                return out;
            }
            // head and complete always consume, so this loop always ends.
            if (r.consumed == 0) return {false, out.completes, Status::none};
            if (r.kind == Kind::head && (!parser.request().has_body || !parser.in_body()))
                return {false, out.completes, Status::none};
            if (r.kind == Kind::complete && parser.in_request())
                return {false, out.completes, Status::none};
            out.completes += r.kind == Kind::complete ? 1 : 0;
        }
    }
    return out;
}

}  // namespace

#ifdef OKSERVE_FUZZER

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    if (!fuzz_one(input).sane) __builtin_trap();
    return 0;
}

#else

#include <doctest/doctest.h>

#include "tests/fuzz/corpus_files.hpp"

TEST_SUITE("parser") {

TEST_CASE("the fuzz corpus parses sanely") {
    const auto corpus = okserve::fuzz::corpus_files();
    REQUIRE_MESSAGE(corpus.size() >= 10, "run from the repository root");
    int completes = 0;
    int errors = 0;
    for (const auto& [path, bytes] : corpus) {
        CAPTURE(path);
        const FuzzOutcome o = fuzz_one(bytes);
        CHECK(o.sane);
        completes += o.completes;
        errors += o.error != Status::none ? 1 : 0;
    }
    CHECK(completes > 0);  // the corpus holds good requests...
    CHECK(errors > 0);     // ...and bad ones
}

}  // TEST_SUITE

#endif
