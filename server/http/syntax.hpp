// okserve::http request syntax: the request line, field lines, a whole head's meaning,
// chunk-size lines. Internal to server/http; pure functions over complete lines, no state.
#pragma once

#include <cstdint>
#include <string_view>

#include "server/http/parser.hpp"
#include "server/http/status.hpp"

namespace okserve::http::syntax {

enum class BodyFraming : std::uint8_t { none, length, chunked };

// What a head says: the Request plus how its body is framed.
struct Head {
    Request request;
    BodyFraming framing = BodyFraming::none;
    std::uint64_t content_length = 0;
};

// Parses a whole head: request line, field lines and the empty line that ends them.
// `head` starts at the request line (leading empty lines already skipped) and ends
// with the LF of the empty line. Returns Status::ok or the status to answer with.
Status parse_head(std::string_view head, Head& out) noexcept;

// Just the request line, with or without its line ending: lets a connection answer a
// bad request line (HTTP/0.9 `GET /`, `PRI * HTTP/2.0`) before any field arrives.
Status check_request_line(std::string_view line) noexcept;

// One field line without its line ending: a token name, ':', the value. Used for the
// head's fields and for trailer fields. Returns false on any syntax error.
bool split_field_line(std::string_view line, std::string_view& name,
                      std::string_view& value) noexcept;

// A chunk-size line without its CRLF: hex size and optional extensions (RFC 9112 7.1.1).
bool parse_chunk_line(std::string_view line, std::uint64_t& size) noexcept;

}  // namespace okserve::http::syntax
