// Request syntax after RFC 9112 (message format) and RFC 9110 (field semantics).
// Every function here sees complete lines; framing and buffering live in parser.cpp.
#include "server/http/syntax.hpp"

#include <cstddef>
#include <limits>

#include "server/http/chars.hpp"

namespace okserve::http::syntax {
namespace {

using chars::hex_digit;
using chars::is;
using chars::is_digit;
using chars::is_ows;
using chars::iequals;
using chars::trim_ows;
constexpr std::size_t npos = std::string_view::npos;
constexpr std::uint64_t max_u64 = std::numeric_limits<std::uint64_t>::max();

// What the fields of one head said, before they are checked against each other.
struct Fields {
    int hosts = 0;
    bool close = false;
    bool keep_alive = false;
    bool expect_continue = false;
    bool has_length = false;
    std::uint64_t length = 0;
    bool has_codings = false;
    bool chunked_seen = false;
    bool chunked_last = false;
    bool unknown_coding = false;
};

// Splits the next line off `rest`, without its ending. A head may end its lines with
// a bare LF (RFC 9112 2.2); the CR of a CRLF is dropped here, any other CR stays and
// later fails the character checks.
std::string_view next_line(std::string_view& rest) noexcept {
    const std::size_t lf = rest.find('\n');
    std::string_view line = rest.substr(0, lf);
    rest.remove_prefix(lf == npos ? rest.size() : lf + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return line;
}

Method method_of(std::string_view m) noexcept {
    switch (m.size()) {
    case 3: return m == "GET" ? Method::get : m == "PUT" ? Method::put : Method::other;
    case 4: return m == "HEAD" ? Method::head : m == "POST" ? Method::post : Method::other;
    case 5: return m == "PATCH" ? Method::patch : m == "TRACE" ? Method::trace : Method::other;
    case 6: return m == "DELETE" ? Method::delete_ : Method::other;
    case 7: return m == "OPTIONS" ? Method::options
                 : m == "CONNECT" ? Method::connect : Method::other;
    default: return Method::other;
    }
}

// Every octet is in `cls`, or is a '%' starting a percent-encoding (RFC 3986 2.1).
bool valid_pct(std::string_view s, chars::Class cls) noexcept {
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%') {
            if (i + 2 >= s.size() || !is(s[i + 1], hex_digit) || !is(s[i + 2], hex_digit))
                return false;
            i += 2;
        } else if (!is(s[i], cls)) {
            return false;
        }
    }
    return true;
}

// uri-host [ ":" port ] (RFC 9110 7.2); CONNECT's authority-form needs both parts.
bool valid_host(std::string_view s, bool authority_form) noexcept {
    std::size_t colon = npos;
    if (!s.empty() && s.front() == '[') {
        const std::size_t close = s.find(']');
        if (close == npos || close == 1) return false;
        for (char c : s.substr(1, close - 1))
            if (!is(c, chars::reg_name) && c != ':') return false;
        if (close + 1 < s.size() && s[close + 1] != ':') return false;
        colon = close + 1 < s.size() ? close + 1 : npos;
    } else {
        colon = s.find(':');
        const std::string_view host = s.substr(0, colon);
        if (!valid_pct(host, chars::reg_name) || (authority_form && host.empty())) return false;
    }
    if (colon == npos) return !authority_form;
    const std::string_view port = s.substr(colon + 1);
    for (char c : port)
        if (!is_digit(c)) return false;
    return !authority_form || !port.empty();
}

// The four forms of RFC 9112 3.2, each allowed only where the method permits it.
bool valid_target(Method m, std::string_view t) noexcept {
    if (m == Method::connect) return valid_host(t, true);
    if (t == "*") return m == Method::options;
    if (t.front() == '/') return valid_pct(t, chars::uri_char);
    // absolute-form, with an authority: scheme "://" ... A bare "host:port" would also
    // read as scheme ":" path; requiring "//" keeps authority-form out of other methods.
    const std::size_t colon = t.find("://");
    if (colon == npos || !chars::is_alpha(t.front())) return false;
    for (char c : t.substr(0, colon))
        if (!is(c, chars::scheme_char)) return false;
    return valid_pct(t.substr(colon + 1), chars::uri_char);
}

// "HTTP/" DIGIT "." DIGIT; a well-formed version we do not speak is a 505, not a 400.
Status parse_version(std::string_view v, std::uint8_t& minor) noexcept {
    if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || !is_digit(v[5]) || v[6] != '.' ||
        !is_digit(v[7]))
        return Status::bad_request;
    if (v[5] != '1' || v[7] > '1') return Status::version_not_supported;
    minor = static_cast<std::uint8_t>(v[7] - '0');
    return Status::ok;
}

// method SP request-target SP HTTP-version, with exactly one SP between the parts.
// The version is judged before the target so that "PRI * HTTP/2.0" gets a 505.
Status parse_request_line(std::string_view line, Request& req) noexcept {
    const std::size_t sp1 = line.find(' ');
    if (sp1 == npos || !chars::is_token(line.substr(0, sp1))) return Status::bad_request;
    const std::string_view rest = line.substr(sp1 + 1);
    const std::size_t sp2 = rest.find(' ');
    if (sp2 == npos || sp2 == 0) return Status::bad_request;  // HTTP/0.9, or two SPs
    const Status s = parse_version(rest.substr(sp2 + 1), req.version_minor);
    if (s != Status::ok) return s;
    req.method = method_of(line.substr(0, sp1));
    return valid_target(req.method, rest.substr(0, sp2)) ? Status::ok : Status::bad_request;
}

// Calls fn on each non-empty element of a comma-separated list (RFC 9110 5.6.1);
// stops and returns false as soon as fn does.
template <typename Fn>
bool for_each_element(std::string_view list, Fn&& fn) noexcept {
    for (;;) {
        const std::size_t comma = list.find(',');
        const std::string_view element = trim_ows(list.substr(0, comma));
        if (!element.empty() && !fn(element)) return false;
        if (comma == npos) return true;
        list.remove_prefix(comma + 1);
    }
}

// 1*DIGIT; a list of identical values, or the same field repeated with the same value,
// is accepted as RFC 9110 8.6 allows; any disagreement is an error.
bool parse_content_length(std::string_view value, Fields& f) noexcept {
    bool any = false;
    const bool ok = for_each_element(value, [&](std::string_view e) {
        std::uint64_t n = 0;
        for (char c : e) {
            const auto digit = static_cast<std::uint64_t>(c - '0');
            if (!is_digit(c) || n > (max_u64 - digit) / 10) return false;
            n = n * 10 + digit;
        }
        if (f.has_length && n != f.length) return false;
        f.has_length = any = true;
        f.length = n;
        return true;
    });
    return ok && any;
}

// Transfer codings in the order applied. chunked must come last and only once; a
// registered compression coding is fine (the body is discarded, never decoded); any
// other coding is remembered for a 501.
bool parse_codings(std::string_view value, Fields& f) noexcept {
    f.has_codings = true;
    return for_each_element(value, [&](std::string_view e) {
        const std::size_t semi = e.find(';');
        const std::string_view coding = trim_ows(e.substr(0, semi));
        if (!chars::is_token(coding)) return false;
        const bool chunked = iequals(coding, "chunked");
        if (chunked && (f.chunked_seen || semi != npos)) return false;
        f.chunked_seen |= chunked;
        f.chunked_last = chunked;
        if (!chunked && !iequals(coding, "gzip") && !iequals(coding, "x-gzip") &&
            !iequals(coding, "deflate") && !iequals(coding, "compress") &&
            !iequals(coding, "x-compress"))
            f.unknown_coding = true;
        return true;
    });
}

void parse_connection(std::string_view value, Fields& f) noexcept {
    for_each_element(value, [&](std::string_view e) {
        if (iequals(e, "close")) f.close = true;
        else if (iequals(e, "keep-alive")) f.keep_alive = true;
        return true;
    });
}

// Dispatches on the name's length first: most fields are none of these five.
bool apply_field(std::string_view name, std::string_view value, Fields& f) noexcept {
    switch (name.size()) {
    case 4:
        // An empty Host names no one: 400, like a missing one.
        if (iequals(name, "host")) return ++f.hosts == 1 && !value.empty() && valid_host(value, false);
        break;
    case 6:
        if (iequals(name, "expect")) f.expect_continue |= iequals(value, "100-continue");
        break;
    case 10:
        if (iequals(name, "connection")) parse_connection(value, f);
        break;
    case 14:
        if (iequals(name, "content-length")) return parse_content_length(value, f);
        break;
    case 17:
        if (iequals(name, "transfer-encoding")) return parse_codings(value, f);
        break;
    default:
        break;
    }
    return true;
}

// Checks the fields against each other and the version (RFC 9112 6.1, 6.3, 9.3).
Status finish(const Fields& f, Head& out) noexcept {
    Request& r = out.request;
    if (r.version_minor == 1 && f.hosts == 0) return Status::bad_request;
    // A 2xx to CONNECT would turn the connection into a tunnel (RFC 9110 9.3.6): refuse it.
    if (r.method == Method::connect) return Status::method_not_allowed;
    if (f.has_codings) {
        // Both framings at once is the classic smuggling vector; HTTP/1.0 has no
        // chunked coding, so its framing would be ambiguous too.
        if (f.has_length || r.version_minor == 0 || !f.chunked_last) return Status::bad_request;
        if (f.unknown_coding) return Status::not_implemented;
        out.framing = BodyFraming::chunked;
    } else if (f.length > 0) {
        out.framing = BodyFraming::length;
        out.content_length = f.length;
    }
    r.keep_alive = f.close ? false : (r.version_minor == 1 || f.keep_alive);
    r.has_body = out.framing != BodyFraming::none;
    // An HTTP/1.0 client never waits for a 100 (RFC 9110 10.1.1).
    r.expect_continue = f.expect_continue && r.has_body && r.version_minor == 1;
    return Status::ok;
}

// quoted-string (RFC 9110 5.6.4) starting at s[i] == '"'; advances i past it.
bool skip_quoted_string(std::string_view s, std::size_t& i) noexcept {
    for (++i; i < s.size(); ++i) {
        if (s[i] == '"') {
            ++i;
            return true;
        }
        if (s[i] == '\\' && ++i == s.size()) return false;
        if (!is(s[i], chars::field_char)) return false;
    }
    return false;
}

// *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] ) (RFC 9112 7.1.1)
bool valid_chunk_extensions(std::string_view s) noexcept {
    std::size_t i = 0;
    const auto skip_ows = [&] { while (i < s.size() && is_ows(s[i])) ++i; };
    const auto skip_token = [&] {
        const std::size_t from = i;
        while (i < s.size() && is(s[i], chars::tchar)) ++i;
        return i > from;
    };
    while (i < s.size()) {
        skip_ows();
        if (i == s.size() || s[i] != ';') return false;
        ++i;
        skip_ows();
        if (!skip_token()) return false;
        skip_ows();
        if (i < s.size() && s[i] == '=') {
            ++i;
            skip_ows();
            const bool quoted = i < s.size() && s[i] == '"';
            if (!(quoted ? skip_quoted_string(s, i) : skip_token())) return false;
        }
    }
    return true;
}

}  // namespace

bool split_field_line(std::string_view line, std::string_view& name,
                      std::string_view& value) noexcept {
    std::size_t i = 0;
    while (i < line.size() && is(line[i], chars::tchar)) ++i;
    // Catches an empty name, obs-fold (a line starting with SP or HTAB) and any
    // whitespace between the name and its colon.
    if (i == 0 || i == line.size() || line[i] != ':') return false;
    name = line.substr(0, i);
    value = trim_ows(line.substr(i + 1));
    for (char c : value)
        if (!is(c, chars::field_char)) return false;
    return true;
}

Status parse_head(std::string_view head, Head& out) noexcept {
    out = Head{};
    const Status s = parse_request_line(next_line(head), out.request);
    if (s != Status::ok) return s;
    Fields fields;
    for (std::string_view line = next_line(head); !line.empty(); line = next_line(head)) {
        std::string_view name;
        std::string_view value;
        if (!split_field_line(line, name, value) || !apply_field(name, value, fields))
            return Status::bad_request;
    }
    return finish(fields, out);
}

Status check_request_line(std::string_view line) noexcept {
    Request ignored;
    return parse_request_line(next_line(line), ignored);
}

bool parse_chunk_line(std::string_view line, std::uint64_t& size) noexcept {
    std::size_t i = 0;
    size = 0;
    for (; i < line.size() && is(line[i], hex_digit); ++i) {
        if (size > (max_u64 >> 4)) return false;
        size = (size << 4) | static_cast<std::uint64_t>(chars::hex_value(line[i]));
    }
    return i > 0 && valid_chunk_extensions(line.substr(i));
}

}  // namespace okserve::http::syntax
