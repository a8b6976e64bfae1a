#include "server/config.hpp"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <functional>
#include <sstream>
#include <string_view>
#include <vector>

#include "server/sys/error.hpp"

namespace okserve {

namespace {

[[noreturn]] void bad(const std::string& flag, const std::string& why) {
    throw UsageError("okserve: " + flag + ": " + why);
}

std::uint64_t parse_uint(const std::string& flag, const std::string& text, std::uint64_t lo,
                         std::uint64_t hi) {
    if (text.empty() || !std::isdigit(static_cast<unsigned char>(text[0]))) {
        bad(flag, "'" + text + "' is not a number");
    }
    errno = 0;
    char* end = nullptr;
    const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
    if (errno != 0 || *end != '\0') bad(flag, "'" + text + "' is not a number");
    if (v < lo || v > hi) {
        bad(flag, "'" + text + "' is out of range " + std::to_string(lo) + ".." + std::to_string(hi));
    }
    return v;
}

// Reads a regular file whole, into one buffer of its exact size. Anything else (a
// directory, a FIFO, a missing or unreadable file) is a usage error naming the path.
std::string read_file(const std::string& flag, const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) bad(flag, "cannot read '" + path + "': " + std::string(errno_text(errno)));
    struct stat st {};
    const auto fail = [&](const std::string& why) {
        ::close(fd);
        bad(flag, "cannot read '" + path + "': " + why);
    };
    if (::fstat(fd, &st) != 0) fail(std::string(errno_text(errno)));
    if (!S_ISREG(st.st_mode)) fail(S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file");
    std::string body(static_cast<std::size_t>(st.st_size), '\0');
    std::size_t got = 0;
    while (got < body.size()) {
        const ssize_t n = ::read(fd, body.data() + got, body.size() - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) fail(std::string(errno_text(errno)));
        if (n == 0) break;  // it shrank while we read: keep what is there
        got += static_cast<std::size_t>(n);
    }
    body.resize(got);
    ::close(fd);
    return body;
}

std::pair<std::string, std::string> parse_header(const std::string& text) {
    const auto colon = text.find(':');
    if (colon == std::string::npos || colon == 0) bad("--header", "'" + text + "' is not 'Name: value'");
    std::string value = text.substr(colon + 1);
    const auto first = value.find_first_not_of(" \t");
    value = first == std::string::npos ? std::string() : value.substr(first);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.pop_back();
    return {text.substr(0, colon), value};
}

using Setter = std::function<void(Config&, const std::string& flag, const std::string& value)>;

struct Flag {
    const char* name;   // long name without "--"
    char short_name;    // 0 when none
    bool takes_value;
    Setter set;
};

std::size_t size_value(const std::string& f, const std::string& v, std::size_t lo, std::size_t hi) {
    return static_cast<std::size_t>(parse_uint(f, v, lo, hi));
}

const std::vector<Flag>& flags() {
    static const std::vector<Flag> table = {
        {"host", 0, true, [](Config& c, auto&, auto& v) { c.host = v; }},
        {"port", 'p', true, [](Config& c, auto& f, auto& v) { c.port = static_cast<std::uint16_t>(parse_uint(f, v, 0, 65535)); }},
        {"workers", 'w', true, [](Config& c, auto& f, auto& v) { c.workers = size_value(f, v, 1, 4096); }},
        {"min-workers", 0, true, [](Config& c, auto& f, auto& v) { c.min_workers = size_value(f, v, 1, 4096); }},
        {"queue", 'q', true, [](Config& c, auto& f, auto& v) { c.queue = size_value(f, v, 0, 1u << 20); }},
        {"mode", 'm', true, [](Config& c, auto& f, auto& v) {
             for (Mode m : {Mode::thread, Mode::queue, Mode::pool, Mode::reactor, Mode::uring}) {
                 if (v == to_string(m)) {
                     c.mode = m;
                     return;
                 }
             }
             bad(f, "'" + v + "' is not a mode (thread, queue, pool, reactor, uring)");
         }},
        {"overflow", 0, true, [](Config& c, auto& f, auto& v) {
             if (v == "block") c.overflow = Overflow::block;
             else if (v == "reject") c.overflow = Overflow::reject;
             else bad(f, "'" + v + "' is not block or reject");
         }},
        {"dispatcher-sched", 0, true, [](Config& c, auto& f, auto& v) {
             if (v == "batch") c.batch_dispatcher = true;
             else if (v == "normal") c.batch_dispatcher = false;
             else bad(f, "'" + v + "' is not batch or normal");
         }},
        {"listeners", 0, true, [](Config& c, auto& f, auto& v) {
             if (v == "reuseport") c.reuse_port = true;
             else if (v == "shared") c.reuse_port = false;
             else bad(f, "'" + v + "' is not reuseport or shared");
         }},
        {"defer-accept", 0, true, [](Config& c, auto& f, auto& v) {
             if (v == "on") c.defer_accept = true;
             else if (v == "off") c.defer_accept = false;
             else bad(f, "'" + v + "' is not on or off");
         }},
        {"unix", 0, true, [](Config& c, auto& f, auto& v) {
             if (v.empty()) bad(f, "needs a path");
             c.unix_path = v;
         }},
        {"unix-mode", 0, true, [](Config& c, auto& f, auto& v) {
             char* end = nullptr;
             errno = 0;
             const unsigned long m = v.empty() ? 0 : std::strtoul(v.c_str(), &end, 8);
             if (v.empty() || errno != 0 || *end != '\0' || m > 0777 || !std::isdigit(static_cast<unsigned char>(v[0])))
                 bad(f, "'" + v + "' is not an octal mode like 0660");
             c.unix_mode = static_cast<unsigned>(m);
         }},
        {"fd", 0, true, [](Config& c, auto& f, auto& v) { c.listen_fd = static_cast<int>(parse_uint(f, v, 0, 1u << 20)); }},
        {"backlog", 0, true, [](Config& c, auto& f, auto& v) { c.backlog = static_cast<int>(parse_uint(f, v, 1, 1u << 20)); }},
        {"max-connections", 0, true, [](Config& c, auto& f, auto& v) { c.max_connections = size_value(f, v, 1, 1u << 24); }},
        {"max-requests", 0, true, [](Config& c, auto& f, auto& v) { c.max_requests = parse_uint(f, v, 0, UINT64_MAX); }},
        {"close", 0, false, [](Config& c, auto&, auto&) { c.close = true; }},
        {"status", 's', true, [](Config& c, auto& f, auto& v) { c.response.status = static_cast<int>(parse_uint(f, v, 200, 599)); }},
        {"body", 'b', true, [](Config& c, auto&, auto& v) { c.response.body = v; }},
        {"body-file", 0, true, [](Config& c, auto& f, auto& v) { c.response.body = read_file(f, v); }},
        {"content-type", 't', true, [](Config& c, auto&, auto& v) { c.response.content_type = v; }},
        {"header", 'H', true, [](Config& c, auto&, auto& v) { c.response.headers.push_back(parse_header(v)); }},
        {"server-header", 0, false, [](Config& c, auto&, auto&) { c.response.server_header = true; }},
        {"max-body", 0, true, [](Config& c, auto& f, auto& v) { c.max_body = parse_uint(f, v, 0, UINT64_MAX / 2); }},
        {"max-head", 0, true, [](Config& c, auto& f, auto& v) { c.max_head = size_value(f, v, 64, 1u << 20); }},
        {"drain-delay", 0, true, [](Config& c, auto& f, auto& v) {
             c.drain_delay = v == "0" ? std::chrono::milliseconds(0) : parse_duration(f, v);  // 0: no delay
         }},
        {"admin", 0, true, [](Config& c, auto& f, auto& v) {
             parse_host_port(f, v, c.admin_host, c.admin_port);
             c.admin = true;
         }},
        {"admin-interval", 0, true, [](Config& c, auto& f, auto& v) { c.admin_interval = parse_duration(f, v); }},
        {"work", 0, true, [](Config& c, auto& f, auto& v) {
             std::string why;
             const auto w = parse_work(v, &why);
             if (!w) bad(f, why);
             c.work = *w;
         }},
        {"rate-limit", 0, true, [](Config& c, auto& f, auto& v) {
             char* end = nullptr;
             errno = 0;
             const double r = v.empty() ? -1 : std::strtod(v.c_str(), &end);
             if (v.empty() || errno != 0 || *end != '\0' || !(r >= 0.001) || r > 1e9 ||
                 !std::isdigit(static_cast<unsigned char>(v[0])))
                 bad(f, "'" + v + "' is not a rate in requests per second (0.001 .. 1e9)");
             c.rate_limit = r;
         }},
        {"rate-burst", 0, true, [](Config& c, auto& f, auto& v) { c.rate_burst = parse_uint(f, v, 1, 1u << 30); }},
        {"instance-header", 0, false, [](Config& c, auto&, auto&) { c.instance_header = true; }},
        {"instance-name", 0, true, [](Config& c, auto& f, auto& v) {
             if (v.empty()) bad(f, "needs a name");
             c.instance_name = v;
             c.instance_header = true;
         }},
        {"access-log", 0, true, [](Config& c, auto& f, auto& v) {
             if (v.empty()) bad(f, "needs a file name");
             c.access_log = v;
         }},
        {"header-timeout", 0, true, [](Config& c, auto& f, auto& v) { c.header_timeout = parse_duration(f, v); }},
        {"body-timeout", 0, true, [](Config& c, auto& f, auto& v) { c.body_timeout = parse_duration(f, v); }},
        {"keepalive-timeout", 0, true, [](Config& c, auto& f, auto& v) { c.keepalive_timeout = parse_duration(f, v); }},
        {"write-timeout", 0, true, [](Config& c, auto& f, auto& v) { c.write_timeout = parse_duration(f, v); }},
        {"linger-timeout", 0, true, [](Config& c, auto& f, auto& v) { c.linger_timeout = parse_duration(f, v); }},
        {"drain-timeout", 0, true, [](Config& c, auto& f, auto& v) { c.drain_timeout = parse_duration(f, v); }},
    };
    return table;
}

std::string env_name(std::string_view flag) {
    std::string name = "OKSERVE_";
    for (char ch : flag) name += ch == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    return name;
}

const Flag* find_long(std::string_view name);

void apply_environment(Config& c, std::vector<std::string>& given) {
    if (const char* port = std::getenv("PORT"); port && *port) find_long("port")->set(c, "PORT", port);
    for (const Flag& f : flags()) {
        const std::string name = env_name(f.name);
        const char* value = std::getenv(name.c_str());
        if (value == nullptr || *value == '\0') continue;
        if (!f.takes_value) {
            const std::string v = value;
            if (v == "1" || v == "true" || v == "yes") {
                f.set(c, name, v);
                given.push_back(f.name);
            }
            else if (v != "0" && v != "false" && v != "no") bad(name, "'" + v + "' is not 1 or 0");
            continue;
        }
        f.set(c, name, value);
        given.push_back(f.name);
    }
}

const Flag* find_long(std::string_view name) {
    for (const Flag& f : flags()) if (name == f.name) return &f;
    return nullptr;
}

const Flag* find_short(char ch) {
    for (const Flag& f : flags()) if (f.short_name == ch) return &f;
    return nullptr;
}

}  // namespace

const char* to_string(Mode m) noexcept {
    switch (m) {
        case Mode::thread: return "thread";
        case Mode::queue: return "queue";
        case Mode::pool: return "pool";
        case Mode::reactor: return "reactor";
        case Mode::uring: return "uring";
    }
    return "?";
}

std::chrono::milliseconds parse_duration(const std::string& flag, const std::string& text) {
    std::size_t digits = 0;
    while (digits < text.size() && (std::isdigit(static_cast<unsigned char>(text[digits])) || text[digits] == '.')) ++digits;
    const std::string number = text.substr(0, digits), unit = text.substr(digits);
    double scale = 0;
    if (unit.empty() || unit == "s") scale = 1000;
    else if (unit == "ms") scale = 1;
    else if (unit == "m") scale = 60'000;
    char* end = nullptr;
    const double v = number.empty() ? -1 : std::strtod(number.c_str(), &end);
    if (scale == 0 || number.empty() || *end != '\0' || !(v > 0) || v * scale > 86'400'000.0) {
        bad(flag, "'" + text + "' is not a duration like 500ms, 2s or 1.5");
    }
    return std::chrono::milliseconds(static_cast<long long>(std::ceil(v * scale)));
}

void parse_host_port(const std::string& flag, const std::string& text, std::string& host, std::uint16_t& port) {
    const auto fail = [&] { bad(flag, "'" + text + "' is not ADDR:PORT (127.0.0.1:9090, [::1]:9090)"); };
    std::string h, p;
    if (!text.empty() && text[0] == '[') {
        const std::size_t close = text.find(']');
        if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') fail();
        h = text.substr(1, close - 1);
        p = text.substr(close + 2);
    } else {
        const std::size_t colon = text.rfind(':');
        if (colon == std::string::npos || text.find(':') != colon) fail();
        h = text.substr(0, colon);
        p = text.substr(colon + 1);
    }
    if (h.empty() || p.empty()) fail();
    for (char ch : h)
        if (std::isspace(static_cast<unsigned char>(ch)) || ch == '/' || ch == '[' || ch == ']') fail();
    port = static_cast<std::uint16_t>(parse_uint(flag, p, 0, 65535));
    host = h;
}

std::string check_mode_flags(Mode mode, const std::vector<std::string>& given) {
    struct Unused {
        Mode mode;
        const char* flag;
        const char* why;
    };
    static constexpr Unused table[] = {
        {Mode::thread, "min-workers", "a thread per connection has no pool to shrink"},
        {Mode::thread, "queue", "a thread per connection has no queue"},
        {Mode::thread, "dispatcher-sched", "there is no dispatcher"},
        {Mode::thread, "listeners", "only the reactor has a listener per loop"},
        {Mode::queue, "min-workers", "one consumer, no pool to shrink"},
        {Mode::queue, "listeners", "only the reactor has a listener per loop"},
        {Mode::pool, "listeners", "only the reactor has a listener per loop"},
        {Mode::reactor, "min-workers", "loops are not a pool"},
        {Mode::reactor, "queue", "there is no queue: each loop owns its connections"},
        {Mode::reactor, "dispatcher-sched", "there is no dispatcher"},
        {Mode::uring, "min-workers", "rings are not a pool"},
        {Mode::uring, "queue", "there is no queue: each ring owns its connections"},
        {Mode::uring, "dispatcher-sched", "there is no dispatcher"},
        {Mode::uring, "listeners", "each ring shares the one listener"},
    };
    for (const Unused& u : table) {
        if (u.mode != mode) continue;
        for (const std::string& g : given) {
            if (g == u.flag) return std::string("okserve: --") + u.flag + ": not used by --mode " + to_string(mode) + " (" + u.why + ")";
        }
    }
    return {};
}

void parse_socket_activation(const char* pid, const char* fds, const char* names, SocketActivation& out) {
    out = {};
    if (pid == nullptr && fds == nullptr) {
        if (names != nullptr) bad("LISTEN_FDNAMES", "set without LISTEN_FDS and LISTEN_PID");
        return;
    }
    if (pid == nullptr) bad("LISTEN_FDS", "set without LISTEN_PID (socket activation sets both)");
    if (fds == nullptr) bad("LISTEN_PID", "set without LISTEN_FDS (socket activation sets both)");
    out.given = true;
    out.pid = static_cast<long>(parse_uint("LISTEN_PID", pid, 1, 1u << 30));
    out.count = static_cast<int>(parse_uint("LISTEN_FDS", fds, 0, 1024));
    if (names == nullptr) return;
    std::string rest = names;
    for (std::size_t at = 0;;) {
        const std::size_t colon = rest.find(':', at);
        out.names.push_back(rest.substr(at, colon == std::string::npos ? std::string::npos : colon - at));
        if (colon == std::string::npos) break;
        at = colon + 1;
    }
    if (out.names.size() != static_cast<std::size_t>(out.count)) {
        bad("LISTEN_FDNAMES", "'" + rest + "' names " + std::to_string(out.names.size()) + " sockets, LISTEN_FDS says " + fds);
    }
}

namespace {

// Where the listener comes from: one source only, and no flag that only another source
// uses (a --port beside --fd would be silently ignored otherwise).
void check_listener_flags(const Config& c, const std::vector<std::string>& given) {
    const auto has = [&](const char* name) {
        for (const std::string& g : given) if (g == name) return true;
        return false;
    };
    const char* source = c.activation.given ? "socket activation (LISTEN_FDS)" : c.listen_fd >= 0 ? "--fd" : c.unix_path.empty() ? nullptr : "--unix";
    if (source == nullptr) {
        if (has("unix-mode")) bad("--unix-mode", "needs --unix");
        return;
    }
    if (c.activation.given && has("fd")) bad("--fd", "not used with socket activation (LISTEN_FDS gives the socket)");
    if (c.activation.given && has("unix")) bad("--unix", "not used with socket activation (LISTEN_FDS gives the socket)");
    if (c.listen_fd >= 0 && has("unix")) bad("--unix", "not used with --fd (one listener: the descriptor given)");
    const bool inherited = c.activation.given || c.listen_fd >= 0;
    for (const char* name : {"host", "port", "listeners", "defer-accept", "backlog", "unix-mode"}) {
        const bool applies = !inherited && (std::string_view(name) == "backlog" || std::string_view(name) == "unix-mode");
        if (has(name) && !applies) bad(std::string("--") + name, std::string("not used with ") + source + " (the socket is not okserve's to set up)");
    }
}

// okserve probe [URL] [--timeout T]
CommandLine parse_probe(int argc, const char* const* argv) {
    CommandLine cl;
    cl.action = Command::probe;
    bool have_url = false;
    for (int i = 2; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "-h" || arg == "--help") {
            cl.action = Command::help;
            return cl;
        }
        if (arg == "--timeout" || arg.rfind("--timeout=", 0) == 0) {
            std::string v;
            if (arg.size() > 9) v = arg.substr(10);
            else if (i + 1 < argc) v = argv[++i];
            else bad("--timeout", "needs a value");
            cl.probe.timeout = parse_duration("--timeout", v);
            continue;
        }
        if (arg.rfind("-", 0) == 0) throw UsageError("okserve probe: unknown option '" + arg + "' (usage: okserve probe [URL] [--timeout T])");
        if (have_url) throw UsageError("okserve probe: one URL only ('" + arg + "' is a second)");
        cl.probe.url = arg;
        have_url = true;
    }
    return cl;
}

}  // namespace

CommandLine parse_command_line(int argc, const char* const* argv, bool socket_activation) {
    CommandLine cl;
    std::vector<std::string> given;  // long names of the flags set, from argv or environment
    if (argc >= 2 && std::string_view(argv[1]) == "probe") return parse_probe(argc, argv);
    apply_environment(cl.config, given);
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        const Flag* f = nullptr;
        std::string shown, value;
        bool has_inline = false;
        if (arg == "-h" || arg == "--help") { cl.action = Command::help; return cl; }
        if (arg == "-V" || arg == "--version") { cl.action = Command::version; return cl; }
        if (arg.rfind("--", 0) == 0) {
            std::string name = arg.substr(2);
            if (const auto eq = name.find('='); eq != std::string::npos) {
                value = name.substr(eq + 1);
                name = name.substr(0, eq);
                has_inline = true;
            }
            f = find_long(name);
            shown = "--" + name;
        } else if (arg.size() >= 2 && arg[0] == '-') {
            f = find_short(arg[1]);
            shown = arg.substr(0, 2);
            if (arg.size() > 2) { value = arg.substr(2); has_inline = true; }
        }
        if (f == nullptr) throw UsageError("okserve: unknown option '" + arg + "' (see --help)");
        given.push_back(f->name);
        if (!f->takes_value) {
            if (has_inline) bad(shown, "takes no value");
            f->set(cl.config, shown, "");
            continue;
        }
        if (!has_inline) {
            if (i + 1 >= argc) bad(shown, "needs a value");
            value = argv[++i];
        }
        f->set(cl.config, shown, value);
    }
    if (cl.config.min_workers != 0 && cl.config.workers != 0 && cl.config.min_workers > cl.config.workers) {
        bad("--min-workers", "is larger than --workers");
    }
    if (cl.config.mode == Mode::queue && cl.config.workers > 1) {
        bad("--workers", "--mode queue has exactly one consumer: use 1, or --mode pool");
    }
    if (const std::string why = check_mode_flags(cl.config.mode, given); !why.empty()) throw UsageError(why);
    if (socket_activation) {
        const char* pid = std::getenv("LISTEN_PID");
        const char* fds = std::getenv("LISTEN_FDS");
        const char* names = std::getenv("LISTEN_FDNAMES");
        parse_socket_activation(pid, fds, names, cl.config.activation);
        // Start-up is single-threaded here; children (the live page's loadgen) must not
        // take these for theirs.
        ::unsetenv("LISTEN_PID");
        ::unsetenv("LISTEN_FDS");
        ::unsetenv("LISTEN_FDNAMES");
        const int named = cl.config.activation.given ? 3 : cl.config.listen_fd;
        if (named >= 0 && (cl.config.activation.count > 0 || !cl.config.activation.given)) {
            cl.config.given_fd_closed = ::fcntl(named, F_GETFD) < 0 && errno == EBADF;
        }
    }
    check_listener_flags(cl.config, given);
    return cl;
}

std::string help_text() {
    return R"(okserve: a minimal, fast HTTP/1.1 responder. Every request gets the same answer.

usage: okserve [options]

Listening
      --host ADDR             address to listen on (IPv4 or IPv6)          [127.0.0.1]
  -p, --port N                port; 0 picks a free one                     [8080]
      --backlog N             listen backlog (capped by net.core.somaxconn) [4096]
      --max-connections N     open connections at most      [from RLIMIT_NOFILE]
      --defer-accept on|off   accept a connection once its first bytes arrive
                              (TCP_DEFER_ACCEPT)                             [on]
      --unix PATH             listen on a Unix-domain socket instead of TCP;
                              a stale socket file (nobody listening) is replaced
      --unix-mode MODE        permissions of the --unix socket file        [0660]
      --fd N                  serve the listening socket open as descriptor N
                              (given by a supervisor) instead of opening one
                              Under systemd socket activation (LISTEN_FDS), the
                              socket passed is served; docs/platforms.md
Modes
  -m, --mode MODE             thread, queue, pool, reactor or uring        [pool]
  -w, --workers N             worker threads, or event loops (reactor, uring),
                              or connection threads at most (thread: 512)
                                                                  [one per CPU]
      --min-workers N         let the pool shrink to N idle workers  [= workers]
  -q, --queue N               queue slots beyond one per worker              [64]
      --overflow POLICY       queue full: block (stop accepting) or reject (503)
                                                                          [block]
      --dispatcher-sched P    pool, queue: batch: the dispatcher never preempts
                              a worker; normal: ordinary scheduling       [batch]
      --listeners L           reactor: reuseport (one listener per loop) or
                              shared (one, EPOLLEXCLUSIVE)            [reuseport]
HTTP
      --close                 one answer per connection, then close
      --max-requests N        answers per connection; 0 = unlimited          [0]
      --max-head BYTES        request line + fields at most; over it: 431 [8192]
      --max-body BYTES        request body at most; over it: 413   [no limit]
      --header-timeout T      whole request head within T; else 408        [10s]
      --body-timeout T        body may stall at most T; else 408           [10s]
      --keepalive-timeout T   idle keep-alive connection closes after T    [60s]
      --write-timeout T       a blocked answer may wait T                  [10s]
      --linger-timeout T      after an error answer, drain input for T      [2s]
      --drain-timeout T       on SIGINT/SIGTERM, wait T for connections    [10s]
      --drain-delay T         on SIGTERM, serve on for T first while the
                              admin /ready says 503 (load balancers leave)  [0]
Traffic
      --work SPEC             simulated work per request, before its answer:
                              sleep:50ms, spin:200us, sleep:exp:10ms,
                              spin:exp:100us (exponential, that mean)    [none]
      --rate-limit RPS        requests per second over the server; beyond it
                              429 with Retry-After, connection kept [no limit]
      --rate-burst N          requests let through at once      [RPS/10, >= 1]
      --access-log FILE       one common-log-format line per request   [none]
      --instance-header       add "Okserve-Instance: <host name>:<port>" to
                              every answer (which instance answered)
      --instance-name NAME    ... with NAME instead (implies --instance-header)
Admin
      --admin ADDR:PORT       admin listener: /metrics (Prometheus),
                              /stats.json, /events, /health, /ready, and the
                              live page at /                              [off]
      --admin-interval T      snapshot period for /events and stats      [1s]
Answer
  -s, --status CODE           status code, 200..599 (1xx are interim answers,
                              not final ones)                              [200]
  -b, --body TEXT             body                                          [OK\n]
      --body-file PATH        body read from a file
  -t, --content-type TYPE     Content-Type        [text/plain; charset=utf-8]
  -H, --header "Name: value"  extra header field (repeatable)
      --server-header         add "Server: okserve"
Other
  -h, --help                  this text
  -V, --version               version

usage: okserve probe [URL] [--timeout T]
  One GET to URL (default http://127.0.0.1:8080/): exit 0 on a 2xx answer within T
  (default 2s), else exit 1 with one line saying why. For container health checks.

Durations: 500ms, 2s, 1.5 (seconds), 1m. Every option can also come from the
environment as OKSERVE_<NAME> (OKSERVE_PORT, OKSERVE_WORKERS, OKSERVE_QUEUE, ...);
PORT is honoured too. Options on the command line win.
)";
}

}  // namespace okserve
