#include "server/connection.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <sys/socket.h>
#include <sys/uio.h>

namespace okserve {

namespace {

// Per-thread buffers: a connection holds no buffer while it waits, only the few bytes
// of a partial head (in_) or of a blocked answer (out_). Workers read into, and build
// answers in, these and reuse them for every connection they serve.
struct Scratch {
    std::vector<char> in;
    std::string out;  // answer bytes of the current batch
    struct Segment {
        const char* external;  // a large shared body, or nullptr for out[offset, +length)
        std::size_t offset;
        std::size_t length;
    };
    std::vector<Segment> segments;
    std::size_t open_from = 0;  // start of out bytes not yet in a segment
    std::size_t answers = 0;    // answers in the current batch
    char date[http::date_length];
    bool have_date = false;

    void begin_batch() noexcept {
        out.clear();
        segments.clear();
        open_from = 0;
        answers = 0;
        have_date = false;
    }
    void close_segment() {
        if (out.size() > open_from) segments.push_back({nullptr, open_from, out.size() - open_from});
        open_from = out.size();
    }
    std::size_t bytes() const noexcept {
        std::size_t n = out.size() - open_from;
        for (const Segment& s : segments) n += s.length;
        return n;
    }
};

thread_local Scratch scratch;

// Bodies above this are sent from the shared copy with writev instead of being copied.
constexpr std::size_t inline_body_max = 16 * 1024;
// A batch of pipelined answers is written once it grows past either bound.
constexpr std::size_t batch_bytes_max = 256 * 1024;
constexpr std::size_t batch_segments_max = 512;
constexpr std::size_t read_size = 64 * 1024;

bool is_client_gone(int err) noexcept { return err == ECONNRESET || err == EPIPE || err == ETIMEDOUT; }

}  // namespace

ServerContext::ServerContext(const Config& cfg, std::size_t max_connections)
    : config(cfg),
      responses(cfg.response),
      table(std::make_unique<ConnectionTable>(*this, max_connections)),
      recheck_ms(std::min({cfg.header_timeout, cfg.body_timeout, cfg.keepalive_timeout,
                           cfg.write_timeout, cfg.linger_timeout})
                     .count()) {}

Connection::Connection(ServerContext& ctx, std::uint32_t slot) noexcept
    : ctx_(ctx), slot_(slot), parser_(http::Limits{ctx.config.max_head}) {}

void Connection::open(Fd fd) noexcept {
    fd_ = std::move(fd);
    request_started_ms_ = now_ms();
    deadline_ms_.store(request_started_ms_ + ctx_.config.header_timeout.count(), std::memory_order_relaxed);
    peer_closed_.store(false, std::memory_order_relaxed);
    state_.store(busy, std::memory_order_release);
}

bool Connection::claim_for_event(std::uint32_t events) noexcept {
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) peer_closed_.store(true, std::memory_order_relaxed);
    const std::uint32_t prev = state_.fetch_or(busy | pending, std::memory_order_acq_rel);
    return (prev & (busy | closed)) == 0;
}

bool Connection::claim_if_parked() noexcept {
    std::uint32_t expected = 0;
    return state_.compare_exchange_strong(expected, busy);  // seq_cst: see park()
}

void Connection::run(Wake why) noexcept {
    // Whatever event made us runnable is about to be looked at: forget it.
    state_.store(busy, std::memory_order_relaxed);
    if (why == Wake::timeout) {
        on_timeout();
        return;
    }
    // Wake::drain needs nothing special: an idle connection finds its socket empty and,
    // seeing ctx_.draining, closes instead of parking (read_and_answer).
    Step s = step();
    while (s == Step::park && !park()) s = step();
}

void Connection::reject() noexcept {
    scratch.begin_batch();
    fail_request(http::Status::service_unavailable);
    error_outcome_ = Outcome::rejected;
    Step s = Step::park;
    switch (write_batch()) {
        case Io::failed: return;  // finished inside
        case Io::blocked: break;
        case Io::done: s = after_write(); break;
    }
    while (s == Step::park && !park()) s = step();
}

// One round of work: finish a blocked answer, then drain, read and answer.
Connection::Step Connection::step() noexcept {
    if (!out_.empty()) {
        switch (flush_pending()) {
            case Io::failed: return Step::closed;
            case Io::blocked: return Step::park;
            case Io::done: break;
        }
        if (close_after_write_) return after_write();
    }
    if (lingering_) return linger_read();
    return read_and_answer();
}

Connection::Step Connection::read_and_answer() noexcept {
    const std::size_t capacity = read_size + ctx_.config.max_head;
    if (scratch.in.size() < capacity) scratch.in.resize(capacity);
    for (;;) {
        const std::size_t held = in_.size();
        std::memcpy(scratch.in.data(), in_.data(), held);
        std::size_t got = 0;
        const bool fresh = !unparsed_;
        if (fresh) {
            const ssize_t n = ::recv(fd_.get(), scratch.in.data() + held, capacity - held, 0);
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    // Shutting down: an idle keep-alive connection closes now.
                    if (held == 0 && !parser_.in_request() && ctx_.draining.load()) {
                        return finish(answers_ > 0 ? Outcome::answered : Outcome::timed_out);
                    }
                    return Step::park;
                }
                return finish(is_client_gone(errno) ? end_outcome() : Outcome::errors);
            }
            if (n == 0) return finish(end_outcome());
            if (held == 0 && !parser_.in_request()) request_started_ms_ = now_ms();
            got = static_cast<std::size_t>(n);
        }
        unparsed_ = false;
        bool blocked = false;
        if (!answer_buffered(std::string_view(scratch.in.data(), held + got), blocked)) return Step::closed;
        if (blocked) return Step::park;
        if (close_after_write_) return after_write();
        // Edge-triggered: a short read emptied the socket, and new bytes raise a new
        // event. A full read may have left more behind, and RDHUP may hide an EOF.
        const bool drained = fresh && got < capacity - held;
        if (drained && !peer_closed_.load(std::memory_order_relaxed)) return Step::park;
    }
}

// Parses every complete request in data, queues the answers and writes them. Returns
// false when the connection was closed; sets blocked when an answer could not be
// fully written (the rest waits in out_, unparsed requests in in_).
bool Connection::answer_buffered(std::string_view data, bool& blocked) noexcept {
    scratch.begin_batch();
    while (!data.empty() && !close_after_write_) {
        const http::RequestParser::Result r = parser_.feed(data);
        data.remove_prefix(r.consumed);
        if (r.kind == http::RequestParser::Kind::need_more) break;
        if (r.kind == http::RequestParser::Kind::error) {
            fail_request(r.status);
            break;
        }
        if (r.kind == http::RequestParser::Kind::head) {
            if (parser_.request().expect_continue) {
                scratch.out.append(http::Responses::continue_100());
            }
            continue;
        }
        answer_request();
        if (scratch.bytes() >= batch_bytes_max || scratch.segments.size() >= batch_segments_max) {
            const Io io = write_batch();
            if (io == Io::failed) return false;
            if (io == Io::blocked) {
                in_.assign(data);
                unparsed_ = !data.empty() && !close_after_write_;
                blocked = true;
                return true;
            }
            scratch.begin_batch();
        }
    }
    if (close_after_write_) {
        unread_input_ = !data.empty();
        in_.clear();
    } else {
        in_.assign(data);
    }
    const Io io = write_batch();
    if (io == Io::failed) return false;
    blocked = io == Io::blocked;
    return true;
}

void Connection::answer_request() noexcept {
    const http::Request& req = parser_.request();
    ++answers_;
    ++scratch.answers;
    const std::uint64_t cap = ctx_.config.max_requests;
    http::Framing framing = req.version_minor == 0 ? http::Framing::keep_alive_10 : http::Framing::keep_alive;
    if (!req.keep_alive || ctx_.config.close || (cap != 0 && answers_ >= cap) ||
        ctx_.draining.load(std::memory_order_relaxed)) {
        framing = http::Framing::close;
        close_after_write_ = true;
    }
    queue_answer(ctx_.responses.answer(framing, req.method == http::Method::head));
}

void Connection::fail_request(http::Status status) noexcept {
    const bool head_only = parser_.request().method == http::Method::head;
    queue_answer(ctx_.responses.error(status, head_only));
    close_after_write_ = true;
    error_answered_ = true;
    error_outcome_ = status == http::Status::request_timeout ? Outcome::timed_out : Outcome::errors;
}

void Connection::queue_answer(const http::Answer& a) noexcept {
    Scratch& s = scratch;
    if (!s.have_date) {
        http::DateCache::copy_to(s.date);
        s.have_date = true;
    }
    const std::size_t at = s.out.size();
    s.out.append(a.head);
    std::memcpy(s.out.data() + at + a.date_offset, s.date, http::date_length);
    if (a.body.size() <= inline_body_max) {
        s.out.append(a.body);
        return;
    }
    s.close_segment();
    s.segments.push_back({a.body.data(), 0, a.body.size()});
}

// Writes the batch in one send (one writev when a large body is referenced). What the
// socket would not take is copied to out_, to be finished on EPOLLOUT.
Connection::Io Connection::write_batch() noexcept {
    Scratch& s = scratch;
    ctx_.stats.requests.fetch_add(s.answers, std::memory_order_relaxed);
    s.answers = 0;
    s.close_segment();
    std::size_t total = 0;
    iovec iov[batch_segments_max + 2];
    std::size_t count = 0;
    for (const Scratch::Segment& seg : s.segments) {
        const char* base = seg.external ? seg.external : s.out.data() + seg.offset;
        iov[count++] = {const_cast<char*>(base), seg.length};
        total += seg.length;
    }
    std::size_t sent = 0;
    while (sent < total) {
        msghdr msg{};
        // Skip what is already sent.
        std::size_t skip = sent, first = 0;
        while (first < count && skip >= iov[first].iov_len) skip -= iov[first++].iov_len;
        iovec head = iov[first];
        iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + skip;
        iov[first].iov_len -= skip;
        msg.msg_iov = iov + first;
        msg.msg_iovlen = count - first;
        const ssize_t n = ::sendmsg(fd_.get(), &msg, MSG_NOSIGNAL);
        iov[first] = head;
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            finish(is_client_gone(errno) ? Outcome::closed_by_client : Outcome::errors);
            return Io::failed;
        }
        sent += static_cast<std::size_t>(n);
    }
    if (sent == total) return Io::done;
    // Keep the unsent tail.
    out_.clear();
    out_sent_ = 0;
    std::size_t skip = sent;
    for (std::size_t i = 0; i < count; ++i) {
        const char* base = static_cast<const char*>(iov[i].iov_base);
        if (skip >= iov[i].iov_len) {
            skip -= iov[i].iov_len;
            continue;
        }
        out_.append(base + skip, iov[i].iov_len - skip);
        skip = 0;
    }
    return Io::blocked;
}

Connection::Io Connection::flush_pending() noexcept {
    while (out_sent_ < out_.size()) {
        const ssize_t n = ::send(fd_.get(), out_.data() + out_sent_, out_.size() - out_sent_, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return Io::blocked;
            finish(is_client_gone(errno) ? Outcome::closed_by_client : Outcome::errors);
            return Io::failed;
        }
        out_sent_ += static_cast<std::size_t>(n);
    }
    out_.clear();
    out_sent_ = 0;
    if (out_.capacity() > batch_bytes_max) std::string().swap(out_);
    return Io::done;
}

// The last answer said Connection: close and is fully written.
Connection::Step Connection::after_write() noexcept {
    // Closing with unread input makes the kernel send a reset, which can destroy the
    // answer before the client reads it. So when input may follow, linger instead.
    if (error_answered_ || unread_input_ || !in_.empty() || parser_.in_body()) return start_linger();
    return finish(Outcome::answered);
}

Connection::Step Connection::start_linger() noexcept {
    ::shutdown(fd_.get(), SHUT_WR);
    lingering_ = true;
    linger_until_ms_ = now_ms() + ctx_.config.linger_timeout.count();
    return linger_read();
}

Connection::Step Connection::linger_read() noexcept {
    char sink[16 * 1024];
    for (;;) {
        const ssize_t n = ::recv(fd_.get(), sink, sizeof sink, 0);
        if (n > 0) continue;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Step::park;
        return finish(error_answered_ ? error_outcome_ : Outcome::answered);
    }
}

void Connection::on_timeout() noexcept {
    Step s = Step::closed;
    if (lingering_) {
        s = finish(error_answered_ ? error_outcome_ : Outcome::answered);
    } else if (!out_.empty()) {
        s = finish(Outcome::timed_out);
    } else if (mid_request()) {
        scratch.begin_batch();
        fail_request(http::Status::request_timeout);
        switch (write_batch()) {
            case Io::failed: return;
            case Io::blocked: s = Step::park; break;
            case Io::done: s = after_write(); break;
        }
    } else {
        s = finish(answers_ > 0 ? Outcome::answered : Outcome::timed_out);
    }
    while (s == Step::park && !park()) s = step();
}

bool Connection::mid_request() const noexcept { return !in_.empty() || parser_.in_request(); }

Outcome Connection::end_outcome() const noexcept {
    if (error_answered_) return error_outcome_;
    return answers_ > 0 ? Outcome::answered : Outcome::closed_by_client;
}

std::int64_t Connection::next_deadline() const noexcept {
    const Config& c = ctx_.config;
    if (lingering_) return linger_until_ms_;
    const std::int64_t now = now_ms();
    if (!out_.empty()) return now + c.write_timeout.count();
    if (parser_.in_body()) return now + c.body_timeout.count();
    if (mid_request() || answers_ == 0) return request_started_ms_ + c.header_timeout.count();
    return now + c.keepalive_timeout.count();
}

// Gives the connection back to epoll. Returns false when an event arrived while we held
// it (edge-triggered events are not repeated): the caller must look again.
bool Connection::park() noexcept {
    deadline_ms_.store(next_deadline(), std::memory_order_relaxed);
    if (!registered_) {
        // Registered once, for both directions: edge-triggered events need no re-arming,
        // and EPOLLOUT edges come only after a write hit EAGAIN.
        const int err = ctx_.poller.add(fd_.get(), EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, token());
        if (err != 0) {
            finish(Outcome::errors);
            return true;
        }
        registered_ = true;
    }
    // Read our own fields now: once parked, another thread may own them.
    const bool idle = !mid_request() && out_.empty() && !lingering_;
    std::uint32_t expected = busy;
    if (state_.compare_exchange_strong(expected, 0)) {
        // If shutdown began while we were busy, the dispatcher's sweep may have missed us
        // (it only takes parked connections). Both sides use seq_cst, so either it sees
        // us parked or we see draining here and take ourselves back to close.
        return !(idle && ctx_.draining.load() && claim_if_parked());
    }
    state_.store(busy, std::memory_order_relaxed);
    return false;
}

// The single close path: every connection is counted here, exactly once.
Connection::Step Connection::finish(Outcome outcome) noexcept {
    // Deregister before close, so the descriptor number can't carry old events.
    if (registered_) ctx_.poller.remove(fd_.get());
    fd_.reset();
    ctx_.stats.count(outcome);
    registered_ = close_after_write_ = error_answered_ = lingering_ = unparsed_ = unread_input_ = false;
    answers_ = 0;
    parser_.reset();
    in_.clear();
    out_.clear();
    out_sent_ = 0;
    if (in_.capacity() > read_size) std::string().swap(in_);
    if (out_.capacity() > batch_bytes_max) std::string().swap(out_);
    generation_.fetch_add(1, std::memory_order_release);
    state_.store(closed, std::memory_order_release);
    // After release() another thread may reuse this object: touch nothing of it after.
    ServerContext& ctx = ctx_;
    ctx.table->release(this);
    ctx.live.done();
    return Step::closed;
}

ConnectionTable::ConnectionTable(ServerContext& ctx, std::size_t capacity)
    : ctx_(ctx), capacity_(capacity), slots_(capacity) {
    free_.reserve(capacity);
}

Connection* ConnectionTable::acquire() {
    {
        std::lock_guard lock(free_mutex_);
        if (!free_.empty()) {
            const std::uint32_t slot = free_.back();
            free_.pop_back();
            return slots_[slot].get();
        }
    }
    if (created_ == capacity_) return nullptr;
    slots_[created_] = std::make_unique<Connection>(ctx_, static_cast<std::uint32_t>(created_));
    return slots_[created_++].get();
}

void ConnectionTable::release(Connection* c) noexcept {
    std::lock_guard lock(free_mutex_);
    free_.push_back(c->slot());  // capacity reserved up front: never allocates
}

Connection* ConnectionTable::at(std::uint32_t slot) noexcept {
    return slot < created_ ? slots_[slot].get() : nullptr;
}

}  // namespace okserve
