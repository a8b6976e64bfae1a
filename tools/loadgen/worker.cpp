#include "tools/loadgen/worker.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <sys/uio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <system_error>

#include "tools/loadgen/hlog.hpp"
#include <unistd.h>

namespace okserve::loadgen {

namespace {

constexpr std::size_t read_buffer_size = 64 * 1024;
constexpr int max_events = 256;
// Timeouts and reconnect back-off are checked this often; a refused connect is retried after it.
constexpr std::int64_t sweep_every_ns = 20'000'000;
// -R: a request sent this long after it was due counts as behind schedule.
constexpr std::int64_t late_after_ns = 1'000'000;

std::uint64_t event_data(std::size_t index, std::uint32_t generation) noexcept {
    return (static_cast<std::uint64_t>(generation) << 32) | static_cast<std::uint32_t>(index);
}

// "Connection refused (ECONNREFUSED)": thread-safe, unlike strerror.
void errno_text(char* out, std::size_t size, int error) noexcept {
    const char* desc = strerrordesc_np(error);
    const char* name = strerrorname_np(error);
    std::snprintf(out, size, "%s (%s)", desc ? desc : "unknown error", name ? name : "?");
}

}  // namespace

Worker::Worker(const WorkerConfig& config) : config_(config) {
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) {
        throw std::system_error(errno, std::generic_category(), "epoll_create1");
    }
    const auto n = static_cast<std::size_t>(config_.connections);
    const auto depth = static_cast<std::size_t>(config_.pipeline);
    connections_.resize(n);
    for (Connection& c : connections_) {
        c.checker.set_head_request(config_.head);
    }
    starts_.assign(n * depth, 0);
    // One more copy than can be in flight, so a write may begin at any offset inside a request.
    // With a body nothing is copied: the body is held once, and sendmsg gathers head and body.
    request_len_ = config_.request.size() + config_.body.size();
    for (std::size_t i = 0; i <= depth && config_.body.empty(); ++i) {
        requests_.insert(requests_.end(), config_.request.begin(), config_.request.end());
    }
    read_buffer_.resize(read_buffer_size);
    ready_.reserve(n);
    if (config_.rate > 0) {
        interval_ns_ = std::max<std::int64_t>(1, std::llround(1e9 / config_.rate));
    }
    if (config_.hlog != nullptr) {
        log_interval_.emplace(make_log_histogram());
    }
}

Worker::~Worker() {
    for (Connection& c : connections_) {
        close_fd(c);
    }
    ::close(epoll_fd_);
}

void Worker::run() noexcept {
    std::int64_t now = now_ns();
    next_due_ns_ = config_.start_ns;
    next_sweep_ns_ = now + sweep_every_ns;
    for (Connection& c : connections_) {
        start_connection(c, now);
    }
    epoll_event events[max_events];
    while (!done(now)) {
        const std::int64_t wait = std::max<std::int64_t>(0, next_wake(now) - now);
        const timespec timeout{static_cast<time_t>(wait / 1'000'000'000), static_cast<long>(wait % 1'000'000'000)};
        const int n = epoll_pwait2(epoll_fd_, events, max_events, &timeout, nullptr);
        for (int i = 0; i < n; ++i) {
            on_event(events[i].data.u64, events[i].events);
        }
        now = now_ns();
        if (interval_ns_ > 0) {
            schedule_open_loop(now);
        }
        if (now >= next_sweep_ns_) {
            sweep(now);
            roll_log(now, false);
            next_sweep_ns_ = now + sweep_every_ns;
        }
        publish();
    }
    finished_ns_ = std::min(now, config_.deadline_ns);
    roll_log(now, true);
    if (interval_ns_ > 0 && next_due_ns_ < finished_ns_) {
        // Requests that were due before the end but found no free connection.
        totals_.never_sent += static_cast<std::uint64_t>((finished_ns_ - next_due_ns_ + interval_ns_ - 1) / interval_ns_);
    }
    publish();
}

bool Worker::done(std::int64_t now) const noexcept {
    if (now >= config_.deadline_ns || (config_.stop && config_.stop->load(std::memory_order_relaxed))) {
        return true;
    }
    if (config_.budget == nullptr || !config_.budget->exhausted()) {
        return false;
    }
    return std::none_of(connections_.begin(), connections_.end(), [](const Connection& c) {
        return c.state == State::connecting || (c.state == State::open && c.in_flight > 0);
    });
}

std::int64_t Worker::next_wake(std::int64_t now) const noexcept {
    std::int64_t wake = std::min(config_.deadline_ns, next_sweep_ns_);
    if (interval_ns_ > 0 && !ready_.empty()) {
        wake = std::min(wake, next_due_ns_);
    }
    return std::max(wake, now);
}

std::uint32_t Worker::claim(std::uint32_t want) noexcept {
    return config_.budget ? static_cast<std::uint32_t>(config_.budget->try_claim(want)) : want;
}

void Worker::start_connection(Connection& c, std::int64_t now) noexcept {
    // Each attempt holds a ticket, so -n also bounds the attempts against a server that is down.
    if (now >= config_.deadline_ns || claim(1) == 0) {
        c.state = State::closed;
        return;
    }
    c.since_ns = now;
    c.in_flight = 0;
    c.unsent = 0;
    c.written = 0;
    c.ring_head = 0;
    c.checker.reset();
    ++totals_.connect_attempts;
    c.fd = socket(config_.address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) {
        note_errno(ErrorKind::connect, now, "socket", errno);
        fail(c, ErrorKind::connect, now);
        return;
    }
    ++c.generation;
    const int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const auto* address = reinterpret_cast<const sockaddr*>(&config_.address);
    if (connect(c.fd, address, config_.address_len) < 0 && errno != EINPROGRESS) {
        note_errno(ErrorKind::connect, now, "connect", errno);
        fail(c, ErrorKind::connect, now);
        return;
    }
    // Edge-triggered, registered once for the connection's life: no epoll_ctl per request.
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = event_data(static_cast<std::size_t>(&c - connections_.data()), c.generation);
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, c.fd, &ev) < 0) {
        note_errno(ErrorKind::connect, now, "epoll_ctl", errno);
        fail(c, ErrorKind::connect, now);
        return;
    }
    c.state = State::connecting;
}

void Worker::on_event(std::uint64_t data, std::uint32_t events) noexcept {
    Connection& c = connections_[static_cast<std::uint32_t>(data)];
    // An earlier event of this batch may have closed the connection, or even opened a new one.
    if (c.fd < 0 || c.generation != static_cast<std::uint32_t>(data >> 32)) {
        return;
    }
    if (c.state == State::connecting) {
        if (events & (EPOLLERR | EPOLLHUP)) {
            int error = 0;
            socklen_t len = sizeof error;
            if (getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0 || error == 0) error = ECONNREFUSED;
            const std::int64_t now = now_ns();
            note_errno(ErrorKind::connect, now, "connect", error);
            fail(c, ErrorKind::connect, now);
        } else if (events & EPOLLOUT) {
            on_connected(c);
        }
        return;
    }
    if ((events & EPOLLOUT) && c.unsent > 0 && !flush(c)) {
        return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        on_readable(c, events);
    }
}

void Worker::on_connected(Connection& c) noexcept {
    const std::int64_t now = now_ns();
    c.state = State::open;
    if (interval_ns_ > 0) {
        // Open loop: the schedule, not the connection, decides when requests go out.
        if (config_.budget) config_.budget->give_back(1);
        push_ready(c);
        return;
    }
    // The ticket taken for the attempt pays for the first request.
    const std::uint32_t more = config_.pipeline > 1 ? claim(static_cast<std::uint32_t>(config_.pipeline - 1)) : 0;
    send_requests(c, 1 + more, now, now);
}

void Worker::push_ready(Connection& c) noexcept {
    if (!c.in_ready_list) {
        c.in_ready_list = true;
        ready_.push_back(static_cast<std::uint32_t>(&c - connections_.data()));
    }
}

void Worker::on_readable(Connection& c, std::uint32_t events) noexcept {
    for (;;) {
        const ssize_t n = read(c.fd, read_buffer_.data(), read_buffer_.size());
        if (n > 0) {
            totals_.bytes_read += static_cast<std::uint64_t>(n);
            if (!consume(c, read_buffer_.data(), static_cast<std::size_t>(n), now_ns())) {
                return;
            }
            // Edge-triggered: a short read emptied the socket, unless a FIN is waiting behind it.
            if (static_cast<std::size_t>(n) < read_buffer_.size() && !(events & (EPOLLRDHUP | EPOLLHUP))) {
                break;
            }
        } else if (n == 0) {
            on_eof(c, now_ns());
            return;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN) {
            break;
        } else {
            note_errno(ErrorKind::reset, now_ns(), "read", errno);
            fail(c, ErrorKind::reset, now_ns());
            return;
        }
    }
    if (c.state == State::draining && c.checker.keep_alive()) {
        finish_connection(c, now_ns());  // --close, yet the server keeps it open: we close
    } else if (c.state == State::open && !config_.close) {
        if (interval_ns_ > 0) {
            if (c.in_flight < static_cast<std::uint32_t>(config_.pipeline)) push_ready(c);
        } else {
            refill(c, now_ns());
        }
    }
}

bool Worker::consume(Connection& c, const char* data, std::size_t len, std::int64_t now) noexcept {
    while (len > 0) {
        if (c.state == State::draining) {
            return true;  // the server said close; whatever it sends now answers nothing of ours
        }
        if (c.in_flight == 0) {
            note(ErrorKind::bad_framing, now, "%zu bytes arrived that no request asked for", len);
            fail(c, ErrorKind::bad_framing, now);  // bytes no request asked for
            return false;
        }
        const Feed f = c.checker.feed(data, len);
        if (f.framing == Framing::bad) {
            note(ErrorKind::bad_framing, now, "%s", c.checker.error());
            fail(c, ErrorKind::bad_framing, now);
            return false;
        }
        if (f.framing == Framing::complete) {
            on_response(c, now);
        }
        data += f.consumed;
        len -= f.consumed;
    }
    return true;
}

void Worker::on_response(Connection& c, std::int64_t now) noexcept {
    const auto index = static_cast<std::size_t>(&c - connections_.data());
    const auto depth = static_cast<std::uint32_t>(config_.pipeline);
    const std::int64_t began = starts_[index * depth + c.ring_head];
    const auto latency = static_cast<std::uint64_t>(std::max<std::int64_t>(0, now - began));
    totals_.latency.record(latency);
    if (log_interval_) {
        roll_log(now, false);
        log_interval_->record(static_cast<std::int64_t>((latency + 500) / 1000));
    }
    c.ring_head = (c.ring_head + 1) % depth;
    --c.in_flight;
    c.since_ns = now;
    ++totals_.responses;
    const int klass = c.checker.status() / 100;
    ++totals_.status_classes[static_cast<std::size_t>(std::clamp(klass, 0, 5))];
    if (klass != 2) {
        note(ErrorKind::bad_status, now, "status %d", c.checker.status());
        totals_.count_error(ErrorKind::bad_status);
    }
    if (config_.close || !c.checker.keep_alive()) {
        // The server closes after this answer: requests behind it were never taken, so they go
        // back to the budget for another connection, and we read on to the FIN.
        if (config_.budget && c.in_flight > 0) config_.budget->give_back(c.in_flight);
        c.in_flight = 0;
        c.unsent = 0;
        c.state = State::draining;
    }
}

void Worker::on_eof(Connection& c, std::int64_t now) noexcept {
    if (c.state == State::draining) {
        finish_connection(c, now);
        return;
    }
    const Framing f = c.checker.finish();
    if (f == Framing::complete && c.in_flight > 0) {
        on_response(c, now);  // a body delimited by the close
        finish_connection(c, now);
    } else if (f == Framing::bad) {
        note(ErrorKind::bad_framing, now, "truncated response: %s", c.checker.error());
        fail(c, ErrorKind::bad_framing, now);  // truncated
    } else if (c.in_flight > 0) {
        note(ErrorKind::reset, now, "the server closed the connection with %u request(s) unanswered", c.in_flight);
        fail(c, ErrorKind::reset, now);  // closed before answering what we sent
    } else {
        finish_connection(c, now);  // an idle keep-alive connection closed by the server
    }
}

void Worker::send_requests(Connection& c, std::uint32_t count, std::int64_t start, std::int64_t now) noexcept {
    if (count == 0) {
        return;
    }
    const auto index = static_cast<std::size_t>(&c - connections_.data());
    const auto depth = static_cast<std::uint32_t>(config_.pipeline);
    for (std::uint32_t k = 0; k < count; ++k) {
        starts_[index * depth + (c.ring_head + c.in_flight + k) % depth] = start;
    }
    if (c.in_flight == 0) {
        c.since_ns = now;
    }
    c.in_flight += count;
    c.unsent += static_cast<std::uint64_t>(count) * request_len_;
    totals_.sent += count;
    flush(c);
}

bool Worker::flush(Connection& c) noexcept {
    const std::size_t len = request_len_;
    while (c.unsent > 0) {
        const ssize_t n = config_.body.empty()
                              ? send(c.fd, requests_.data() + c.written % len, c.unsent, MSG_NOSIGNAL)
                              : send_with_body(c);
        if (n > 0) {
            c.written += static_cast<std::uint64_t>(n);
            c.unsent -= static_cast<std::uint64_t>(n);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && errno == EAGAIN) {
            return true;  // the EPOLLOUT edge will bring us back
        } else {
            note_errno(ErrorKind::reset, now_ns(), "send", n < 0 ? errno : EPIPE);
            fail(c, ErrorKind::reset, now_ns());
            return false;
        }
    }
    return true;
}

// The unsent bytes, from wherever the last write stopped, as head and body pieces: at most
// 32 pieces (16 requests) per call.
ssize_t Worker::send_with_body(Connection& c) noexcept {
    iovec pieces[32];
    int count = 0;
    std::uint64_t offset = c.written % request_len_;
    std::uint64_t left = c.unsent;
    const std::size_t head = config_.request.size();
    while (left > 0 && count < 32) {
        const char* base = offset < head ? config_.request.data() + offset : config_.body.data() + (offset - head);
        const std::uint64_t piece = std::min<std::uint64_t>(left, offset < head ? head - offset : request_len_ - offset);
        pieces[count++] = iovec{const_cast<char*>(base), static_cast<std::size_t>(piece)};
        left -= piece;
        offset = (offset + piece) % request_len_;
    }
    msghdr message{};
    message.msg_iov = pieces;
    message.msg_iovlen = static_cast<std::size_t>(count);
    return sendmsg(c.fd, &message, MSG_NOSIGNAL);
}

void Worker::refill(Connection& c, std::int64_t now) noexcept {
    const auto depth = static_cast<std::uint32_t>(config_.pipeline);
    if (c.in_flight < depth) {
        send_requests(c, claim(depth - c.in_flight), now, now);
    }
}

void Worker::schedule_open_loop(std::int64_t now) noexcept {
    const auto depth = static_cast<std::uint32_t>(config_.pipeline);
    while (next_due_ns_ <= now && next_due_ns_ < config_.deadline_ns && !ready_.empty()) {
        Connection& c = connections_[ready_.back()];
        if (c.state != State::open || c.in_flight >= depth || (config_.close && c.written > 0)) {
            c.in_ready_list = false;
            ready_.pop_back();
            continue;
        }
        if (claim(1) == 0) {
            next_due_ns_ = INT64_MAX;  // the budget is spent: nothing more to schedule
            return;
        }
        // Latency counts from when the request was due, not from when a connection was free.
        if (now - next_due_ns_ >= late_after_ns) ++totals_.late;
        send_requests(c, 1, next_due_ns_, now);
        next_due_ns_ += interval_ns_;
    }
}

void Worker::fail(Connection& c, ErrorKind kind, std::int64_t now) noexcept {
    // Errors count failed requests: an attempt that never connected is one, and so is each
    // request in flight on a connection that breaks. A reset of an idle connection is none.
    const std::uint64_t lost = kind == ErrorKind::connect ? 1 : std::max<std::uint64_t>(c.in_flight, kind == ErrorKind::reset ? 0 : 1);
    totals_.count_error(kind, lost);
    close_fd(c);
    if (kind == ErrorKind::connect) {
        c.state = State::waiting;  // retried by the next sweep, so a refused port is not a busy loop
    } else {
        start_connection(c, now);
    }
}

void Worker::note(ErrorKind kind, std::int64_t now, const char* format, ...) noexcept {
    if (!totals_.wants_first(kind)) {
        return;
    }
    FirstError& first = totals_.first_errors[static_cast<std::size_t>(kind)];
    first.at_ns = now;
    va_list args;
    va_start(args, format);
    std::vsnprintf(first.text, sizeof first.text, format, args);
    va_end(args);
}

void Worker::note_errno(ErrorKind kind, std::int64_t now, const char* what, int error) noexcept {
    if (!totals_.wants_first(kind)) {
        return;
    }
    char text[96];
    errno_text(text, sizeof text, error);
    const bool names_target = std::strcmp(what, "connect") == 0;
    note(kind, now, "%s%s%.*s: %s", what, names_target ? " " : "", names_target ? static_cast<int>(config_.target.size()) : 0,
         config_.target.data(), text);
}

void Worker::finish_connection(Connection& c, std::int64_t now) noexcept {
    close_fd(c);
    start_connection(c, now);
}

void Worker::close_fd(Connection& c) noexcept {
    if (c.fd >= 0) {
        ::close(c.fd);
        c.fd = -1;
    }
    c.state = State::closed;
    c.in_flight = 0;
    c.unsent = 0;
}

void Worker::sweep(std::int64_t now) noexcept {
    const bool budget_left = config_.budget && !config_.budget->exhausted();
    for (Connection& c : connections_) {
        const bool late = now - c.since_ns > config_.timeout_ns;
        if (c.state == State::waiting || (c.state == State::closed && budget_left)) {
            start_connection(c, now);
        } else if (c.state == State::connecting && late) {
            note(ErrorKind::connect, now, "connect %.*s: no answer within %.3gs (timed out)",
                 static_cast<int>(config_.target.size()), config_.target.data(), static_cast<double>(config_.timeout_ns) / 1e9);
            fail(c, ErrorKind::connect, now);
        } else if (c.state == State::open && c.in_flight > 0 && late) {
            note(ErrorKind::timeout, now, "no complete response within %.3gs", static_cast<double>(config_.timeout_ns) / 1e9);
            fail(c, ErrorKind::timeout, now);
        } else if (c.state == State::draining && late) {
            finish_connection(c, now);  // the server never closed; not a request error
        }
    }
}

// Hands the interval's histogram to the log once the clock has left it (and at the end), and
// tells the log this worker will deliver nothing earlier. Once an interval per worker: the lock
// and the allocation behind it are off the per-request path.
void Worker::roll_log(std::int64_t now, bool last) noexcept {
    if (!log_interval_) return;
    const std::int64_t interval = config_.hlog->interval_of(now);
    if (interval <= log_interval_index_ && !last) return;
    try {
        if (log_interval_->total() > 0) {
            config_.hlog->deliver(log_interval_index_, *log_interval_);
            log_interval_->reset();
        }
        log_interval_index_ = std::max(interval, log_interval_index_);
        config_.hlog->advance(config_.index, log_interval_index_);
    } catch (...) {
        // Out of memory in the log's map: keep counting into this interval and try again later.
    }
}

void Worker::publish() noexcept {
    live_responses_.store(totals_.responses, std::memory_order_relaxed);
    live_errors_.store(totals_.error_total(), std::memory_order_relaxed);
}

}  // namespace okserve::loadgen
