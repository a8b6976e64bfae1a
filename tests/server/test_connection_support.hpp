// Test support for the connection core and its socket driver: readable names for the
// enums in doctest's messages, a server set up from one Config, and answer text with
// its Date value blanked out so answers compare byte for byte.
#pragma once

#include <doctest/doctest.h>

#include <string>
#include <string_view>

#include "server/config.hpp"
#include "server/connection.hpp"
#include "server/http/response.hpp"
#include "server/socket_driver.hpp"
#include "server/stats.hpp"

namespace okserve::test {

inline const char* name(Connection::Action a) {
    static const char* const names[] = {"read", "write", "linger", "close"};
    return names[static_cast<int>(a)];
}
inline const char* name(Connection::State s) {
    static const char* const names[] = {"idle", "head", "body", "writing", "closing", "lingering", "closed"};
    return names[static_cast<int>(s)];
}
inline const char* name(Outcome o) {
    static const char* const names[] = {"answered", "rejected", "timed_out", "closed_by_client", "errors"};
    return names[static_cast<int>(o)];
}
inline const char* name(Turn t) {
    static const char* const names[] = {"wait_readable", "wait_writable", "yielded", "closed"};
    return names[static_cast<int>(t)];
}

// Timeouts that differ from each other, so a deadline taken from the wrong one shows.
inline Config test_config() {
    Config c;
    c.header_timeout = std::chrono::milliseconds(1'000);
    c.body_timeout = std::chrono::milliseconds(2'000);
    c.keepalive_timeout = std::chrono::milliseconds(3'000);
    c.write_timeout = std::chrono::milliseconds(4'000);
    c.linger_timeout = std::chrono::milliseconds(5'000);
    return c;
}

// One server's rules and one connection on them; the Config lives as long as both.
struct Rig {
    explicit Rig(Config c = test_config()) : config(std::move(c)), rules(config), conn(rules) {}
    Rig(const Rig&) = delete;
    Rig& operator=(const Rig&) = delete;

    Config config;
    ConnectionRules rules;
    Connection conn;
};

// Every "Date: <29 bytes>" value replaced by "<date>"; a value that is not an IMF-fixdate
// ("..., DD Mon YYYY HH:MM:SS GMT") is left as it is, so the comparison shows it.
inline std::string without_dates(std::string_view text) {
    static constexpr std::string_view key = "\r\nDate: ";
    std::string out;
    std::size_t from = 0;
    for (;;) {
        const std::size_t at = text.find(key, from);
        if (at == std::string_view::npos) break;
        const std::size_t value = at + key.size();
        out.append(text.substr(from, value - from));
        from = value;
        if (text.size() - value >= http::date_length && text.substr(value + 3, 2) == ", " &&
            text.substr(value + http::date_length - 4, 4) == " GMT") {
            out += "<date>";
            from = value + http::date_length;
        }
    }
    out.append(text.substr(from));
    return out;
}

// One fixed answer as it goes on the wire, Date blanked.
inline std::string text_of(const http::Answer& a) {
    return without_dates(std::string(a.head) + std::string(a.body));
}

// Counts the non-overlapping occurrences of `what` in `text`.
inline std::size_t count_of(std::string_view text, std::string_view what) {
    std::size_t n = 0;
    for (std::size_t at = text.find(what); at != std::string_view::npos; at = text.find(what, at)) {
        ++n;
        at += what.size();
    }
    return n;
}

// One connection, opened at t=0, and shorthand for the events a test sends it.
struct Conn : Rig {
    using Action = Connection::Action;
    using Kind = Connection::Event::Kind;

    explicit Conn(Config cfg = test_config()) : Rig(std::move(cfg)) { conn.open(0); }
    Connection* operator->() { return &conn; }

    Action in(std::string_view bytes, std::int64_t now) { return conn.on({Kind::input, now, bytes}); }
    Action tell(Kind k, std::int64_t now) { return conn.on({k, now}); }
    Action sent(std::size_t n, std::int64_t now) {
        return conn.on({.kind = Kind::sent, .now_ms = now, .count = n});
    }
    // The unsent output, its slices joined.
    std::string unsent() const {
        Connection::Slice s[Connection::max_slices];
        const std::size_t n = conn.output(s, Connection::max_slices);
        std::string out;
        for (std::size_t i = 0; i < n; ++i) out.append(s[i].data, s[i].size);
        return out;
    }
    // Takes every unsent byte (Dates blanked) and reports it sent at `now`; `next` is
    // the action that came back.
    std::string flush(std::int64_t now) {
        const std::string out = unsent();
        next = sent(out.size(), now);
        return without_dates(out);
    }
    std::string error(http::Status s) const { return text_of(rules.responses.error(s)); }

    Action next = Action::read;
};

}  // namespace okserve::test

// doctest prints an enum as its underlying number (here a char); these overloads, found by
// argument-dependent lookup, print the name instead.
namespace okserve {
inline doctest::String toString(Connection::Action v) { return test::name(v); }
inline doctest::String toString(Connection::State v) { return test::name(v); }
inline doctest::String toString(Outcome v) { return test::name(v); }
inline doctest::String toString(Turn v) { return test::name(v); }
}  // namespace okserve
