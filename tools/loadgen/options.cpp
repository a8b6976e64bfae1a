#include "tools/loadgen/options.hpp"

#include <charconv>
#include <cmath>

namespace okserve::loadgen {

namespace {

template <typename T>
std::optional<T> parse_number(std::string_view text) {
    T value{};
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size()) {
        return std::nullopt;
    }
    return value;
}

std::optional<int> parse_int_in(std::string_view text, int low, int high) {
    const auto v = parse_number<int>(text);
    if (!v || *v < low || *v > high) {
        return std::nullopt;
    }
    return v;
}

enum class Flag { threads, connections, duration, header, timeout, latency, requests, rate,
                  pipeline, close, method, body_file, json, progress, help, version, json_lines, strict,
                  hlog, hlog_interval, start_at };

struct FlagSpec {
    std::string_view short_name;  // "-t", or empty
    std::string_view long_name;   // "--threads"
    bool takes_value;
    Flag flag;
};

constexpr FlagSpec flag_specs[] = {
    {"-t", "--threads", true, Flag::threads},       {"-c", "--connections", true, Flag::connections},
    {"-d", "--duration", true, Flag::duration},     {"-H", "--header", true, Flag::header},
    {"", "--timeout", true, Flag::timeout},         {"", "--latency", false, Flag::latency},
    {"-n", "--requests", true, Flag::requests},     {"-R", "--rate", true, Flag::rate},
    {"", "--pipeline", true, Flag::pipeline},       {"", "--close", false, Flag::close},
    {"-m", "--method", true, Flag::method},         {"", "--body-file", true, Flag::body_file},
    {"", "--json", false, Flag::json},              {"", "--progress", false, Flag::progress},
    {"-h", "--help", false, Flag::help},            {"-V", "--version", false, Flag::version},
    {"", "--json-lines", false, Flag::json_lines},  {"", "--strict", false, Flag::strict},
    {"", "--hlog", true, Flag::hlog},               {"", "--hlog-interval", true, Flag::hlog_interval},
    {"", "--start-at", true, Flag::start_at},
};

// Finds the spec for one argument; splits "--name=value" and "-t4" into name and inline value.
const FlagSpec* find_flag(std::string_view arg, std::optional<std::string_view>* inline_value) {
    for (const FlagSpec& spec : flag_specs) {
        if (arg == spec.long_name || (!spec.short_name.empty() && arg == spec.short_name)) {
            return &spec;
        }
        if (spec.takes_value && arg.starts_with(spec.long_name) && arg.size() > spec.long_name.size() &&
            arg[spec.long_name.size()] == '=') {
            *inline_value = arg.substr(spec.long_name.size() + 1);
            return &spec;
        }
        if (spec.takes_value && !spec.short_name.empty() && arg.size() > 2 && arg.starts_with(spec.short_name) &&
            !arg.starts_with("--")) {
            *inline_value = arg.substr(2);
            return &spec;
        }
    }
    return nullptr;
}

bool is_token(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s) {
        const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                        c == '_' || c == '.';
        if (!ok) return false;
    }
    return true;
}

// Applies one flag's value; returns an error line or an empty string.
std::string apply(Options& o, const FlagSpec& spec, std::string_view value) {
    const std::string bad = "bad value for " + std::string(spec.long_name) + ": '" + std::string(value) + "'";
    switch (spec.flag) {
    case Flag::threads: {
        const auto v = parse_int_in(value, 1, 1024);
        if (!v) return bad;
        o.threads = *v;
        return {};
    }
    case Flag::connections: {
        const auto v = parse_int_in(value, 1, 1'000'000);
        if (!v) return bad;
        o.connections = *v;
        return {};
    }
    case Flag::pipeline: {
        const auto v = parse_int_in(value, 1, 1024);
        if (!v) return bad;
        o.pipeline = *v;
        return {};
    }
    case Flag::duration:
    case Flag::timeout: {
        const auto v = parse_duration_ns(value);
        if (!v) return bad;
        (spec.flag == Flag::duration ? o.duration_ns : o.timeout_ns) = *v;
        o.duration_set = o.duration_set || spec.flag == Flag::duration;
        return {};
    }
    case Flag::requests: {
        const auto v = parse_number<std::uint64_t>(value);
        if (!v || *v == 0) return bad;
        o.requests = *v;
        return {};
    }
    case Flag::rate: {
        const auto v = parse_number<double>(value);
        if (!v || !std::isfinite(*v) || *v <= 0) return bad;
        o.rate = *v;
        return {};
    }
    case Flag::header:
        if (value.find(':') == std::string_view::npos || value.front() == ':' ||
            value.find_first_of("\r\n") != std::string_view::npos) {
            return bad + " (want \"Name: value\")";
        }
        o.headers.emplace_back(value);
        return {};
    case Flag::method:
        if (!is_token(value)) return bad;
        o.method = value;
        return {};
    case Flag::body_file:
        if (value.empty()) return bad;
        o.body_file = value;
        return {};
    case Flag::hlog:
        if (value.empty()) return bad;
        o.hlog = value;
        return {};
    case Flag::hlog_interval: {
        const auto v = parse_duration_ns(value);
        if (!v || *v < 1'000'000) return bad + " (at least 1ms)";
        o.hlog_interval_ns = *v;
        return {};
    }
    case Flag::start_at: {
        const auto v = parse_number<double>(value);
        if (!v || !std::isfinite(*v) || *v <= 0 || *v > 1e11) return bad + " (want seconds since the epoch)";
        o.start_at = *v;
        return {};
    }
    default:
        return {};
    }
}

void apply_switch(Options& o, Flag flag) {
    switch (flag) {
    case Flag::latency: o.latency = true; break;
    case Flag::close: o.close = true; break;
    case Flag::json: o.json = true; break;
    case Flag::progress: o.progress = true; break;
    case Flag::help: o.help = true; break;
    case Flag::version: o.version = true; break;
    case Flag::json_lines: o.json_lines = true; break;
    case Flag::strict: o.strict = true; break;
    default: break;
    }
}

std::string check_combination(const Options& o, bool have_url) {
    if (o.help || o.version) return {};
    if (!have_url) return "missing URL (e.g. http://127.0.0.1:8080/)";
    if (o.threads > o.connections) return "connections (-c) must be at least threads (-t)";
    if (o.close && o.pipeline > 1) return "--close and --pipeline can't be combined: one request per connection";
    if (o.json && o.json_lines) return "--json and --json-lines can't be combined: --json-lines ends with the --json object";
    return {};
}

}  // namespace

std::optional<std::int64_t> parse_duration_ns(std::string_view text) {
    std::size_t digits = 0;
    while (digits < text.size() && ((text[digits] >= '0' && text[digits] <= '9') || text[digits] == '.')) {
        ++digits;
    }
    const auto number = parse_number<double>(text.substr(0, digits));
    const std::string_view unit = text.substr(digits);
    double scale = 0;
    if (unit.empty() || unit == "s") scale = 1e9;
    else if (unit == "ms") scale = 1e6;
    else if (unit == "us") scale = 1e3;
    else if (unit == "m") scale = 60e9;
    else if (unit == "h") scale = 3600e9;
    if (!number || scale == 0 || !(*number > 0) || *number * scale > 1e18) {
        return std::nullopt;
    }
    const auto ns = static_cast<std::int64_t>(std::llround(*number * scale));
    return ns > 0 ? std::optional<std::int64_t>(ns) : std::nullopt;
}

std::optional<Url> parse_url(std::string_view text, std::string* error) {
    constexpr std::string_view scheme = "http://";
    if (!text.starts_with(scheme)) {
        *error = "URL must start with http:// : '" + std::string(text) + "'";
        return std::nullopt;
    }
    std::string_view rest = text.substr(scheme.size());
    const std::size_t slash = rest.find_first_of("/?");
    const std::string_view authority = rest.substr(0, slash);
    Url url;
    url.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
    if (url.path.front() == '?') url.path.insert(0, "/");
    std::string_view host = authority;
    std::string_view port;
    if (authority.starts_with('[')) {
        const std::size_t close = authority.find(']');
        if (close == std::string_view::npos) {
            *error = "bad IPv6 address in URL: '" + std::string(text) + "'";
            return std::nullopt;
        }
        host = authority.substr(1, close - 1);
        const std::string_view after = authority.substr(close + 1);
        if (!after.empty() && after.front() != ':') {
            *error = "bad URL: '" + std::string(text) + "'";
            return std::nullopt;
        }
        port = after.empty() ? std::string_view{} : after.substr(1);
    } else if (const std::size_t colon = authority.find(':'); colon != std::string_view::npos) {
        host = authority.substr(0, colon);
        port = authority.substr(colon + 1);
    }
    const auto port_number = port.empty() ? std::optional<int>(80) : parse_int_in(port, 1, 65535);
    if (host.empty() || !port_number || (authority.find('@') != std::string_view::npos)) {
        *error = "bad host or port in URL: '" + std::string(text) + "'";
        return std::nullopt;
    }
    url.host = host;
    url.port = static_cast<std::uint16_t>(*port_number);
    url.authority = std::string(authority);
    return url;
}

ParsedArgs parse_args(std::span<const std::string_view> args) {
    ParsedArgs out;
    bool have_url = false;
    for (std::size_t i = 0; i < args.size() && out.error.empty(); ++i) {
        const std::string_view arg = args[i];
        if (!arg.starts_with('-') || arg == "-") {
            if (have_url) {
                out.error = "unexpected argument '" + std::string(arg) + "' (the URL was already given)";
            } else if (auto url = parse_url(arg, &out.error)) {
                out.options.url = std::move(*url);
                have_url = true;
            }
            continue;
        }
        std::optional<std::string_view> value;
        const FlagSpec* spec = find_flag(arg, &value);
        if (spec == nullptr) {
            out.error = "unknown flag '" + std::string(arg) + "' (see --help)";
        } else if (!spec->takes_value) {
            apply_switch(out.options, spec->flag);
        } else if (!value && i + 1 >= args.size()) {
            out.error = "flag " + std::string(spec->long_name) + " needs a value";
        } else {
            out.error = apply(out.options, *spec, value ? *value : args[++i]);
        }
    }
    if (out.error.empty()) {
        out.error = check_combination(out.options, have_url);
    }
    return out;
}

std::string build_request(const Options& options, std::string_view body) {
    std::string r = build_head(options, body.size());
    r += body;
    return r;
}

std::string build_head(const Options& options, std::size_t body_size) {
    std::string r = options.method + " " + options.url.path + " HTTP/1.1\r\n";
    bool have_host = false;
    for (const std::string& h : options.headers) {
        const std::string_view name(h.data(), h.find(':'));
        have_host = have_host || (name.size() == 4 && (name[0] | 0x20) == 'h' && (name[1] | 0x20) == 'o' &&
                                  (name[2] | 0x20) == 's' && (name[3] | 0x20) == 't');
    }
    if (!have_host) {
        r += "Host: " + options.url.authority + "\r\n";
    }
    for (const std::string& h : options.headers) {
        r += h + "\r\n";
    }
    if (body_size > 0 || options.method == "POST" || options.method == "PUT") {
        r += "Content-Length: " + std::to_string(body_size) + "\r\n";
    }
    if (options.close) {
        r += "Connection: close\r\n";
    }
    r += "\r\n";
    return r;
}

std::string usage() {
    return "Usage: loadgen [options] http://host:port/path\n"
           "  -t, --threads N        worker threads (default 2)\n"
           "  -c, --connections N    connections in total, spread over the threads (default 10)\n"
           "  -d, --duration D       run time: 10s, 500ms, 1m (default 10s)\n"
           "  -n, --requests N       send exactly N requests, then stop (instead of a duration)\n"
           "  -R, --rate N           open loop: N requests/second in total, latency from the\n"
           "                         intended send time (no coordinated omission)\n"
           "      --pipeline N       keep N requests in flight on each connection (default 1)\n"
           "      --close            one request per connection (Connection: close)\n"
           "  -H, --header \"N: v\"    add a request header (repeatable)\n"
           "  -m, --method M         request method (default GET)\n"
           "      --body-file PATH   send the file as the request body\n"
           "      --timeout D        a response later than this is an error (default 2s)\n"
           "      --latency          print the latency percentiles table\n"
           "      --json             print one JSON object instead of the summary\n"
           "      --progress         progress lines on stderr even when it is not a terminal\n"
           "      --json-lines       a JSON progress object on stdout each second, then the result\n"
           "      --strict           with -R: exit 3 when the achieved rate is below 95% of it\n"
           "      --hlog FILE        write an HdrHistogram interval log (latency in us) to FILE\n"
           "      --hlog-interval D  one interval per D in the log (default 1s)\n"
           "      --start-at T       start at wall-clock time T (seconds since the epoch), to\n"
           "                         start several machines together\n"
           "  -h, --help             this text\n"
           "  -V, --version          the version\n"
           "   or: loadgen report [--json] [--latency] FILE...   merge --hlog files into one report\n"
           "Exit status: 0 no errors, 1 errors seen (or start-up failure), 2 bad command line or\n"
           "input file, 3 --strict and the rate fell short.\n";
}

}  // namespace okserve::loadgen
