#include "server/admin/admin_server.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <ctime>
#include <string_view>
#include <vector>

#include <sys/socket.h>

#include "server/admin/load_runner.hpp"
#include "server/admin/metrics.hpp"
#include "server/admin/page.hpp"
#include "server/http/response.hpp"
#include "server/poller.hpp"
#include "server/sys/error.hpp"
#include "server/sys/eventfd.hpp"

namespace okserve::admin {

namespace {

constexpr std::size_t max_connections = 256;
constexpr std::size_t max_head = 16 * 1024;
constexpr std::size_t max_body = 64 * 1024;
constexpr std::size_t max_stream_backlog = 256 * 1024;  // an /events reader this far behind is closed
constexpr std::int64_t idle_timeout_ms = 60'000;
constexpr std::int64_t header_timeout_ms = 10'000;
constexpr std::int64_t linger_timeout_ms = 2'000;

enum Token : std::uint64_t { listener_token = 1ull << 40, wake_token = 2ull << 40, load_token = 3ull << 40 };

double unix_now() {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

struct Reply {
    int status = 200;
    std::string_view content_type = "text/plain; charset=utf-8";
    std::string body;
    std::string extra;     // "Name: value\r\n" lines
    bool stream = false;   // /events: no length, the connection carries events until it closes
};

Reply text(int status, std::string body, std::string extra = {}) {
    return Reply{status, "text/plain; charset=utf-8", std::move(body), std::move(extra), false};
}

Reply json(int status, std::string body) {
    body += '\n';
    return Reply{status, "application/json", std::move(body), "Cache-Control: no-store\r\n", false};
}

}  // namespace

class AdminServer::Loop {
public:
    Loop(const Config& cfg, ServerStats& stats, int listen_fd, std::atomic<bool>& ready, std::function<Gauges()> gauges,
         std::string main_url, const AccessLog* access_log)
        : cfg_(cfg), stats_(stats), listen_fd_(listen_fd), ready_(ready), gauges_(std::move(gauges)),
          access_log_(access_log), runner_(find_loadgen(), std::move(main_url)), wake_(make_eventfd()),
          started_ns_(now_ns()) {
        if (int err = poller_.add(listen_fd_, EPOLLIN, listener_token)) throw SysError("admin", "epoll_ctl", err);
        if (int err = poller_.add(wake_.get(), EPOLLIN, wake_token)) throw SysError("admin", "epoll_ctl", err);
        previous_ = read_now();
        snapshot_ = snapshot_json(cfg_, previous_, last_, extras(), runner_.status_json());
    }

    void stop() { notify(wake_); }

    void run() {
        epoll_event events[64];
        std::int64_t next_tick = now_ms() + cfg_.admin_interval.count();
        for (;;) {
            std::int64_t now = now_ms();
            const int n = poller_.wait(events, 64, static_cast<int>(std::clamp<std::int64_t>(next_due(next_tick) - now, 0, 1000)));
            now = now_ms();
            for (int i = 0; i < n; ++i) {
                const std::uint64_t tok = events[i].data.u64;
                if (tok == wake_token) {
                    conns_.clear();
                    return;
                }
                if (tok == listener_token) accept_all(now);
                else if (tok == load_token) on_load_output();
                else on_event(static_cast<std::size_t>(tok), events[i].events, now);
            }
            if (resume_accept_at_ >= 0 && now >= resume_accept_at_) {
                resume_accept_at_ = -1;
                poller_.modify(listen_fd_, EPOLLIN, listener_token);
            }
            if (now >= next_tick) {
                tick();
                next_tick = now + cfg_.admin_interval.count();
            }
            expire(now);
        }
    }

private:
    struct Conn {
        Fd fd;
        std::string in;
        std::string out;
        std::size_t sent = 0;
        std::int64_t deadline = 0;
        bool stream = false;       // an /events subscriber
        bool close_after = false;  // the answer being written is the last
        bool lingering = false;    // write side shut: reading until EOF before closing
        bool want_write = false;   // EPOLLOUT is in the interest set
    };

    Reading read_now() const {
        Reading r;
        r.figures = stats_.figures();
        r.gauges = gauges_ ? gauges_() : Gauges{};
        r.at_ns = now_ns();
        r.unix_time = unix_now();
        return r;
    }

    Extras extras() const {
        Extras x;
        x.ready = ready_.load(std::memory_order_relaxed);
        x.uptime_s = static_cast<double>(now_ns() - started_ns_) / 1e9;
        if (access_log_ != nullptr) {
            x.access_log_written = access_log_->written();
            x.access_log_dropped = access_log_->dropped();
        }
        return x;
    }

    // Every --admin-interval: a new reading, the interval since the last, and an event
    // for each subscriber.
    void tick() {
        const Reading r = read_now();
        last_ = between(previous_, r);
        previous_ = r;
        snapshot_ = snapshot_json(cfg_, r, last_, extras(), runner_.status_json());
        const std::string event = "data: " + snapshot_ + "\n\n";
        for (std::size_t i = 0; i < conns_.size(); ++i) {
            Conn* c = conns_[i].get();
            if (c == nullptr || !c->stream) continue;
            if (c->out.size() - c->sent > max_stream_backlog) {
                close(i);
                continue;
            }
            c->out += event;
            flush(i);
        }
    }

    std::int64_t next_due(std::int64_t next_tick) const {
        std::int64_t due = next_tick;
        if (resume_accept_at_ >= 0) due = std::min(due, resume_accept_at_);
        for (const auto& c : conns_)
            if (c && c->deadline > 0) due = std::min(due, c->deadline);
        return due;
    }

    void expire(std::int64_t now) {
        for (std::size_t i = 0; i < conns_.size(); ++i)
            if (conns_[i] && conns_[i]->deadline > 0 && now >= conns_[i]->deadline) close(i);
    }

    void accept_all(std::int64_t now) {
        for (;;) {
            Accepted a = accept_one(listen_fd_);
            if (!a.fd) {
                // Out of descriptors (or memory): the listener stays readable, so stop
                // watching it for a while rather than spin.
                if (a.err != EAGAIN && a.err != EINTR && a.err != ECONNABORTED) {
                    poller_.modify(listen_fd_, 0, listener_token);
                    resume_accept_at_ = now + 100;
                }
                return;
            }
            std::size_t slot = conns_.size();
            for (std::size_t i = 0; i < conns_.size(); ++i)
                if (!conns_[i]) slot = i;
            if (slot == conns_.size()) {
                if (conns_.size() >= max_connections) continue;  // full: the socket closes
                conns_.emplace_back();
            }
            auto c = std::make_unique<Conn>();
            c->fd = std::move(a.fd);
            c->deadline = now + header_timeout_ms;
            if (poller_.add(c->fd.get(), EPOLLIN | EPOLLRDHUP, slot) != 0) continue;
            conns_[slot] = std::move(c);
        }
    }

    void on_event(std::size_t slot, std::uint32_t events, std::int64_t now) {
        if (slot >= conns_.size() || !conns_[slot]) return;
        if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
            if (!read_input(slot, now)) return;
        }
        if (conns_[slot] && (events & EPOLLOUT)) flush(slot);
    }

    // False when the connection was closed.
    bool read_input(std::size_t slot, std::int64_t now) {
        Conn& c = *conns_[slot];
        char buf[8192];
        bool eof = false;
        for (;;) {
            const ssize_t n = ::recv(c.fd.get(), buf, sizeof buf, 0);
            if (n > 0) {
                if (!c.lingering && !c.stream) c.in.append(buf, static_cast<std::size_t>(n));
                if (c.in.size() > max_head + max_body) break;
                continue;
            }
            if (n == 0) eof = true;
            else if (errno == EINTR) continue;
            else if (errno != EAGAIN) eof = true;
            break;
        }
        if (eof && (c.lingering || c.stream || c.out.size() == c.sent)) {
            close(slot);
            return false;
        }
        if (!c.lingering && !c.stream) serve_requests(slot, now);
        return conns_[slot] != nullptr;
    }

    // Answers each complete request in the buffer, in order.
    void serve_requests(std::size_t slot, std::int64_t now) {
        Conn& c = *conns_[slot];
        while (!c.close_after && !c.stream) {
            const std::size_t head_end = c.in.find("\r\n\r\n");
            if (head_end == std::string::npos) {
                if (c.in.size() > max_head) respond(slot, text(431, "Request Header Fields Too Large\n"), false, true);
                break;
            }
            const std::string_view head(c.in.data(), head_end);
            const std::size_t line_end = head.find("\r\n");
            const std::string_view line = head.substr(0, line_end);
            const std::size_t sp1 = line.find(' ');
            const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
            if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
                respond(slot, text(400, "Bad Request\n"), false, true);
                break;
            }
            const std::string_view method = line.substr(0, sp1);
            const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
            const std::string_view version = line.substr(sp2 + 1);
            if (version != "HTTP/1.1" && version != "HTTP/1.0") {
                respond(slot, text(505, "HTTP Version Not Supported\n"), false, true);
                break;
            }
            bool keep_alive = version == "HTTP/1.1";
            std::uint64_t length = 0;
            bool chunked = false;
            std::string_view fields = line_end == std::string_view::npos ? std::string_view() : head.substr(line_end + 2);
            while (!fields.empty()) {
                const std::size_t e = fields.find("\r\n");
                const std::string_view f = fields.substr(0, e);
                fields = e == std::string_view::npos ? std::string_view() : fields.substr(e + 2);
                const std::size_t colon = f.find(':');
                if (colon == std::string_view::npos) continue;
                std::string name(f.substr(0, colon));
                for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
                std::string_view value = f.substr(colon + 1);
                while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
                while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
                std::string lower(value);
                for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
                if (name == "content-length") {
                    const auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), length);
                    if (ec != std::errc() || p != value.data() + value.size()) length = max_body + 1;
                } else if (name == "transfer-encoding") {
                    chunked = true;
                } else if (name == "connection") {
                    if (lower.find("close") != std::string::npos) keep_alive = false;
                    else if (lower.find("keep-alive") != std::string::npos) keep_alive = true;
                }
            }
            if (chunked || length > max_body) {
                respond(slot, text(chunked ? 411 : 413, chunked ? "Length Required\n" : "Content Too Large\n"), false, true);
                break;
            }
            const std::size_t total = head_end + 4 + static_cast<std::size_t>(length);
            if (c.in.size() < total) break;  // the body is still coming
            const std::string request_method(method);
            const std::string request_target(target);
            c.in.erase(0, total);
            const bool head_only = request_method == "HEAD";
            respond(slot, route(request_method, request_target), head_only, !keep_alive);
            if (!conns_[slot]) return;
        }
        if (conns_[slot] && !conns_[slot]->stream && !conns_[slot]->lingering && conns_[slot]->out.size() == conns_[slot]->sent) {
            conns_[slot]->deadline = now + (conns_[slot]->in.empty() ? idle_timeout_ms : header_timeout_ms);
        }
    }

    static Reply not_allowed(std::string_view allow) {
        return text(405, "Method Not Allowed\n", "Allow: " + std::string(allow) + "\r\n");
    }

    Reply route(const std::string& method, const std::string& target) {
        const std::size_t q = target.find('?');
        const std::string path = target.substr(0, q);
        const std::string query = q == std::string::npos ? std::string() : target.substr(q + 1);
        const bool get = method == "GET" || method == "HEAD";
        const auto page = [&](auto&& make) -> Reply { return get ? make() : not_allowed("GET, HEAD"); };
        if (path == "/metrics") {
            return page([&] {
                return Reply{200, prometheus_content_type, prometheus(read_now(), extras()), {}, false};
            });
        }
        if (path == "/stats.json") {
            return page([&] { return json(200, snapshot_json(cfg_, read_now(), last_, extras(), runner_.status_json())); });
        }
        if (path == "/events") {
            return page([&] {
                return Reply{200, "text/event-stream", "retry: 2000\n\ndata: " + snapshot_ + "\n\n",
                             "Cache-Control: no-store\r\n", true};
            });
        }
        if (path == "/health") return page([] { return text(200, "ok\n"); });
        if (path == "/ready") {
            return page([&] {
                return ready_.load(std::memory_order_relaxed) ? text(200, "ready\n") : text(503, "draining\n", "Retry-After: 1\r\n");
            });
        }
        if (path == "/" || path == "/index.html") {
            return page([] { return Reply{200, "text/html; charset=utf-8", std::string(live_page()), "Cache-Control: no-store\r\n", false}; });
        }
        if (path == "/load") return page([&] { return json(200, runner_.status_json()); });
        if (path == "/load/start") {
            if (method != "POST") return not_allowed("POST");
            LoadParams p;
            if (std::string why = parse_load_params(query, p); !why.empty()) return json(400, "{\"error\":\"" + json_escape(why) + "\"}");
            if (runner_.running()) return json(409, "{\"error\":\"a run is in progress: stop it first\"}");
            if (std::string why = runner_.start(p); !why.empty()) return json(503, "{\"error\":\"" + json_escape(why) + "\"}");
            poller_.add(runner_.output_fd(), EPOLLIN, load_token);
            return json(202, runner_.status_json());
        }
        if (path == "/load/stop") {
            if (method != "POST") return not_allowed("POST");
            if (!runner_.stop()) return json(409, "{\"error\":\"no run is in progress\"}");
            return json(202, runner_.status_json());
        }
        return text(404, "Not Found\n");
    }

    void respond(std::size_t slot, const Reply& r, bool head_only, bool close_after) {
        Conn& c = *conns_[slot];
        if (r.status >= 400 && r.status != 404 && r.status != 405 && r.status != 409 && r.status != 503) close_after = true;
        std::string& o = c.out;
        o += "HTTP/1.1 " + std::to_string(r.status) + " ";
        o += http::reason_phrase(r.status);
        o += "\r\nDate: ";
        char date[http::date_length];
        http::DateCache::copy_to(date);
        o.append(date, http::date_length);
        o += "\r\nContent-Type: ";
        o += r.content_type;
        o += "\r\n";
        if (!r.stream) o += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
        o += r.extra;
        if (close_after || r.stream) o += "Connection: close\r\n";
        o += "\r\n";
        if (!head_only) o += r.body;
        c.close_after = close_after || (r.stream && head_only);
        c.stream = r.stream && !head_only;
        c.deadline = c.stream ? 0 : c.deadline;
        flush(slot);
    }

    void flush(std::size_t slot) {
        Conn& c = *conns_[slot];
        while (c.sent < c.out.size()) {
            const ssize_t n = ::send(c.fd.get(), c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
            if (n > 0) {
                c.sent += static_cast<std::size_t>(n);
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno == EAGAIN) {
                if (!c.want_write) {
                    c.want_write = true;
                    poller_.modify(c.fd.get(), EPOLLIN | EPOLLOUT | EPOLLRDHUP, slot);
                }
                return;
            }
            close(slot);
            return;
        }
        c.out.clear();
        c.sent = 0;
        if (c.want_write) {
            c.want_write = false;
            poller_.modify(c.fd.get(), EPOLLIN | EPOLLRDHUP, slot);
        }
        if (c.close_after && !c.lingering) {
            // Shut the write side and read until the client closes: closing with unread
            // input would reset the connection and could destroy the answer.
            ::shutdown(c.fd.get(), SHUT_WR);
            c.lingering = true;
            c.in.clear();
            c.deadline = now_ms() + linger_timeout_ms;
        }
    }

    void on_load_output() {
        runner_.on_readable();  // at the end of output it reaps the child and closes the pipe
    }

    void close(std::size_t slot) { conns_[slot].reset(); }

    const Config& cfg_;
    ServerStats& stats_;
    int listen_fd_;
    std::atomic<bool>& ready_;
    std::function<Gauges()> gauges_;
    const AccessLog* access_log_;
    LoadRunner runner_;
    Poller poller_;
    Fd wake_;
    std::int64_t started_ns_;
    std::int64_t resume_accept_at_ = -1;  // accepting paused after EMFILE until then
    std::vector<std::unique_ptr<Conn>> conns_;  // by slot (the epoll token)
    Reading previous_;
    Interval last_;
    std::string snapshot_;
};

AdminServer::AdminServer(const Config& cfg, ServerStats& stats)
    : config_(cfg), stats_(stats), listener_(open_listener(cfg.admin_host, cfg.admin_port, 64)) {}

AdminServer::~AdminServer() { stop(); }

void AdminServer::start(std::function<Gauges()> gauges, std::string main_url, const AccessLog* access_log) {
    loop_ = std::make_unique<Loop>(config_, stats_, listener_.fd.get(), ready_, std::move(gauges), std::move(main_url),
                                   access_log);
    thread_ = std::thread([this] { loop_->run(); });
}

void AdminServer::stop() {
    if (!thread_.joinable()) return;
    loop_->stop();
    thread_.join();
    loop_.reset();
}

}  // namespace okserve::admin
