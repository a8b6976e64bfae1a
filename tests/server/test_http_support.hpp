// Test support for the HTTP parser: inputs placed against a PROT_NONE guard page, and a
// driver that plays the connection's part (keep unconsumed bytes, append new ones).
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "server/http/parser.hpp"

namespace okserve::http::test {

// Copies bytes so that their last one sits just before an unreadable page: any read
// past the end faults at once, with or without AddressSanitizer.
class GuardedBytes {
public:
    explicit GuardedBytes(std::size_t capacity) {
        page_ = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
        size_ = (capacity + page_ - 1) / page_ * page_;
        void* p = mmap(nullptr, size_ + page_, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) throw std::runtime_error("mmap failed");
        base_ = static_cast<char*>(p);
        if (mprotect(base_ + size_, page_, PROT_NONE) != 0) throw std::runtime_error("mprotect");
    }
    ~GuardedBytes() { munmap(base_, size_ + page_); }
    GuardedBytes(const GuardedBytes&) = delete;
    GuardedBytes& operator=(const GuardedBytes&) = delete;

    std::string_view place(std::string_view s) {
        if (s.size() > size_) throw std::length_error("input larger than the guarded buffer");
        char* at = base_ + size_ - s.size();
        if (!s.empty()) std::memcpy(at, s.data(), s.size());
        return {at, s.size()};
    }

private:
    char* base_ = nullptr;
    std::size_t size_ = 0;
    std::size_t page_ = 0;
};

inline GuardedBytes& guarded() {
    static GuardedBytes bytes(64 * 1024);
    return bytes;
}

inline const char* method_name(Method m) {
    static const char* const names[] = {"GET",     "HEAD",    "POST",  "PUT",   "DELETE",
                                        "OPTIONS", "CONNECT", "TRACE", "PATCH", "other"};
    return names[static_cast<int>(m)];
}

// One result as text: "complete GET 1.1 keep", "head POST 1.1 close body 100", "error 400".
inline std::string describe(RequestParser::Kind kind, Status status, const Request& r) {
    using Kind = RequestParser::Kind;
    if (kind == Kind::error) return "error " + std::to_string(static_cast<int>(status));
    std::string s = kind == Kind::head ? "head " : kind == Kind::complete ? "complete " : "?? ";
    s += method_name(r.method);
    s += r.version_minor == 1 ? " 1.1" : " 1.0";
    s += r.keep_alive ? " keep" : " close";
    if (r.has_body) s += " body";
    if (r.expect_continue) s += " 100";
    return s;
}

// Presents `input` to one parser the way a connection would, the bytes arriving in
// pieces that end at each of `cuts` (then at the end). Returns every result but
// need_more, joined by "; ", plus "; left N" when bytes stayed unconsumed.
inline std::string drive(std::string_view input, const std::vector<std::size_t>& cuts = {},
                         Limits limits = {}) {
    RequestParser parser(limits);
    std::string pending;
    std::string out;
    std::size_t arrived = 0;
    std::vector<std::size_t> ends = cuts;
    ends.push_back(input.size());
    for (std::size_t end : ends) {
        pending.append(input.substr(arrived, end - arrived));
        arrived = end;
        for (int rounds = 0; rounds < 100000; ++rounds) {
            const auto r = parser.feed(guarded().place(pending));
            if (r.consumed > pending.size()) return "consumed more than given";
            pending.erase(0, r.consumed);
            if (r.kind == RequestParser::Kind::need_more) break;
            out += (out.empty() ? "" : "; ") + describe(r.kind, r.status, parser.request());
            if (r.kind == RequestParser::Kind::error) return out;
            if (pending.empty() && r.kind == RequestParser::Kind::complete) break;
        }
    }
    if (!pending.empty()) out += (out.empty() ? "left " : "; left ") + std::to_string(pending.size());
    return out;
}

// Every single split point, then one byte at a time.
inline std::vector<std::vector<std::size_t>> all_splits(std::size_t size) {
    std::vector<std::vector<std::size_t>> splits;
    for (std::size_t k = 1; k < size; ++k) splits.push_back({k});
    std::vector<std::size_t> bytewise;
    for (std::size_t k = 1; k < size; ++k) bytewise.push_back(k);
    splits.push_back(bytewise);
    return splits;
}

}  // namespace okserve::http::test
