// The connection state machine: parsing, answering (pipelined answers batched), the
// keep-alive, header, body, write and linger timers, and the one place an outcome is set.
#include "server/connection.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace okserve {



using Kind = Connection::Event::Kind;

namespace {

// Answer buffers that idle connections gave back, kept by the thread for the next answer it
// writes: an idle keep-alive connection holds no buffer (its memory stays small), and the
// next request does not pay malloc and free for one. Bounded; beyond it buffers are freed.
// This is the one thing here that knows about threads, and only as an allocator does.
struct SpareBuffers {
    static constexpr std::size_t max_count = 256;
    static constexpr std::size_t max_capacity = 4096;  // larger ones are freed, not kept
    std::vector<std::string> spare;

    void give(std::string& s) noexcept {
        if (s.capacity() > 15 && s.capacity() <= max_capacity && spare.size() < max_count) {
            s.clear();
            spare.push_back(std::move(s));
        }
        std::string().swap(s);
    }
    void take(std::string& s) noexcept {
        if (s.capacity() > 15 || spare.empty()) return;
        s = std::move(spare.back());
        spare.pop_back();
    }
};

SpareBuffers& spares() noexcept {
    thread_local SpareBuffers buffers;
    return buffers;
}

}  // namespace

namespace {

std::unique_ptr<RateLimiter> make_limiter(const Config& cfg) {
    if (cfg.rate_limit <= 0) return nullptr;
    const double tenth = std::ceil(cfg.rate_limit / 10);
    const std::uint64_t burst = cfg.rate_burst != 0 ? cfg.rate_burst : static_cast<std::uint64_t>(std::max(1.0, tenth));
    return std::make_unique<RateLimiter>(cfg.rate_limit, burst);
}

// The request line at the start of data (after any empty lines a client may send first).
std::string_view first_line(std::string_view data) noexcept {
    const std::size_t begin = data.find_first_not_of("\r\n");
    if (begin == std::string_view::npos) return {};
    data.remove_prefix(begin);
    const std::size_t end = data.find_first_of("\r\n");
    return data.substr(0, std::min(end, std::size_t{1024}));
}

}  // namespace

ConnectionRules::ConnectionRules(const Config& cfg)
    : config(cfg), limiter(make_limiter(cfg)), fine_time(cfg.admin || limiter),
      responses(cfg.response, limiter ? limiter->retry_after_s() : 1) {}

Connection::Connection(const ConnectionRules& rules) noexcept
    : rules_(&rules), parser_(http::Limits{rules.config.max_head, rules.config.max_body}) {}

Connection::Action Connection::open(std::int64_t now) noexcept {
    parser_.reset();
    in_.clear();
    clear_output();
    answers_ = limited_ = answers_reported_ = limited_reported_ = 0;
    event_ns_ = head_started_ns_ = batch_first_ns_ = batch_start_sum_ns_ = 0;
    batch_answers_ = 0;
    finished_ = {};
    if (log_) *log_ = {};
    outcome_ = Outcome::answered;
    error_outcome_ = Outcome::errors;
    close_after_ = error_answered_ = unread_input_ = peer_eof_ = draining_ = false;
    request_started_ms_ = now;  // a connection that never sends gets the header timeout
    return set(State::idle, Action::read, now + rules_->config.header_timeout.count());
}

Connection::Action Connection::reject(std::int64_t now) noexcept {
    open(now);
    fail_request(http::Status::service_unavailable);
    error_outcome_ = Outcome::rejected;
    return start_writing(now);
}

Connection::Action Connection::on(const Event& e) noexcept {
    if (state_ == State::closed) return Action::close;
    finished_ = {};
    const std::int64_t ns = e.now_ns != 0 ? e.now_ns : e.now_ms * 1'000'000;
    switch (e.kind) {
        case Kind::input:
            event_ns_ = ns;
            return on_input(e.bytes, e.now_ms);
        case Kind::eof: return on_eof(e.now_ms);
        case Kind::sent: return on_sent(e.count, e.now_ms, ns);
        case Kind::timeout: return on_timeout(e.now_ms);
        case Kind::drain: return on_drain(e.now_ms);
        case Kind::evict: return reusable_idle() ? finish(Outcome::answered) : action_;
        case Kind::failed: return on_failed(e.client_gone);
    }
    return action_;
}

Connection::Action Connection::on_input(std::string_view bytes, std::int64_t now) noexcept {
    switch (state_) {
        case State::lingering: return action_;  // discarded: we only wait for the client to go
        case State::closing:
            unread_input_ = true;
            return action_;
        case State::writing:  // a caller that reads while output is pending: keep it for later
            in_.append(bytes);
            return action_;
        default: break;
    }
    const bool request_was_open = parser_.in_request();
    const std::uint64_t answers_before = answers_;
    std::size_t used = 0;
    if (in_.empty()) {
        // Fast path: parse straight from the caller's buffer; keep only what is left.
        used = answer_all(bytes);
        if (!close_after_) in_.assign(bytes.substr(used));
    } else {
        in_.append(bytes);
        used = answer_all(in_);
        in_.erase(0, used);
        bytes = in_;
        used = 0;
    }
    if (close_after_) {
        unread_input_ = unread_input_ || used < bytes.size();
        in_.clear();
    }
    // The header timeout runs from a request's first byte.
    if (parser_.in_request() && (!request_was_open || answers_ != answers_before)) request_started_ms_ = now;
    if (output_bytes() != 0) return start_writing(now);
    return await_input(now);
}

// Answers every complete request in data, stopping early when a batch is full or an
// answer closes the connection. Returns the bytes consumed.
std::size_t Connection::answer_all(std::string_view data) noexcept {
    std::size_t used = 0;
    // When the request answered next began: earlier, if its first bytes came before.
    // Latency bookkeeping only when it is measured (ConnectionRules::fine_time).
    const bool timed = rules_->fine_time;
    std::int64_t start = timed && parser_.in_request() ? head_started_ns_ : event_ns_;
    const auto answered = [&] {
        if (!timed) return;
        if (batch_answers_++ == 0) batch_first_ns_ = start;
        batch_start_sum_ns_ += start - batch_first_ns_;
        start = event_ns_;
    };
    while (used < data.size() && !close_after_) {
        const bool new_request = rules_->access_log != nullptr && !parser_.in_body();
        const std::size_t at = used;
        const http::RequestParser::Result r = parser_.feed(data.substr(used));
        used += r.consumed;
        if (new_request && r.kind != http::RequestParser::Kind::need_more) {
            log_fields().request_line.assign(first_line(data.substr(at)));
        }
        switch (r.kind) {
            case http::RequestParser::Kind::need_more: head_started_ns_ = start; return used;
            case http::RequestParser::Kind::error:
                fail_request(r.status);
                answered();
                return used;
            case http::RequestParser::Kind::head:
                if (parser_.request().expect_continue) {
                    const std::string_view c = http::Responses::continue_100();
                    out_.append(c);
                    out_total_ += c.size();
                }
                break;
            case http::RequestParser::Kind::complete:
                answer_request();
                answered();
                if (output_bytes() >= batch_bytes_max || segments_.size() + 2 >= max_slices) {
                    head_started_ns_ = start;
                    return used;
                }
                break;
        }
    }
    head_started_ns_ = start;
    return used;
}

void Connection::answer_request() noexcept {
    const http::Request& req = parser_.request();
    const Config& c = rules_->config;
    ++answers_;
    http::Framing framing = req.version_minor == 0 ? http::Framing::keep_alive_10 : http::Framing::keep_alive;
    if (!req.keep_alive || c.close || (c.max_requests != 0 && answers_ >= c.max_requests) || draining_) {
        framing = http::Framing::close;
        close_after_ = true;
    }
    const bool head_only = req.method == http::Method::head;
    if (rules_->limiter && !rules_->limiter->admit(event_ns_)) {
        ++limited_;
        const http::Answer& a = rules_->responses.limited(framing, head_only);
        queue(a);
        log(429, a);
        return;
    }
    const http::Answer& a = rules_->responses.answer(framing, head_only);
    queue(a);
    log(rules_->config.response.status, a);
}

void Connection::log(int status, const http::Answer& a) noexcept {
    if (rules_->access_log == nullptr) return;
    LogFields& f = log_fields();
    rules_->access_log->record(f.peer, f.request_line, status, a.body.size());
    f.request_line.clear();
}

void Connection::fail_request(http::Status status) noexcept {
    const bool head_only = parser_.request().method == http::Method::head;
    const http::Answer& a = rules_->responses.error(status, head_only);
    queue(a);
    log(static_cast<int>(status), a);
    close_after_ = true;
    error_answered_ = true;
    error_outcome_ = status == http::Status::request_timeout ? Outcome::timed_out : Outcome::errors;
}

// Appends one answer with the current date. A large body is referenced, not copied: a
// hundred clients that never read an 8 MiB answer cost a hundred small heads.
void Connection::queue(const http::Answer& a) noexcept {
    const std::size_t at = out_.size();
    if (out_.capacity() <= 15) spares().take(out_);
    out_.append(a.head);
    char date[http::date_length];
    http::DateCache::copy_to(date);
    std::memcpy(out_.data() + at + a.date_offset, date, http::date_length);
    out_total_ += a.size();
    if (a.body.size() <= inline_body_max) {
        out_.append(a.body);
        return;
    }
    if (out_.size() > open_from_) segments_.push_back({nullptr, open_from_, out_.size() - open_from_});
    open_from_ = out_.size();
    segments_.push_back({a.body.data(), 0, a.body.size()});
}

std::size_t Connection::output(Slice* out, std::size_t max) const noexcept {
    std::size_t skip = out_sent_, n = 0;
    const auto add = [&](const char* data, std::size_t size) {
        if (skip >= size) {
            skip -= size;
            return;
        }
        if (n < max) out[n++] = {data + skip, size - skip};
        skip = 0;
    };
    for (const Segment& s : segments_) add(s.external ? s.external : out_.data() + s.offset, s.size);
    if (out_.size() > open_from_) add(out_.data() + open_from_, out_.size() - open_from_);
    return n;
}

Connection::Action Connection::on_sent(std::size_t n, std::int64_t now, std::int64_t now_ns) noexcept {
    out_sent_ += n;
    if (out_sent_ < out_total_) return set(state_, Action::write, now + rules_->config.write_timeout.count());
    if (batch_answers_ > 0) {
        const auto answers = static_cast<std::int64_t>(batch_answers_);
        finished_ = {batch_answers_, std::max<std::int64_t>(0, answers * (now_ns - batch_first_ns_) - batch_start_sum_ns_)};
        batch_answers_ = 0;
        batch_start_sum_ns_ = 0;
    }
    clear_output();
    return after_output(now);
}

// Everything queued is sent.
Connection::Action Connection::after_output(std::int64_t now) noexcept {
    if (peer_eof_) return finish(ending());
    if (state_ == State::closing) {
        // Closing with unread input makes the kernel send a reset, which can destroy the
        // answer before the client reads it: when input may follow, linger instead.
        if (error_answered_ || unread_input_ || !in_.empty() || parser_.in_body()) return start_lingering(now);
        return finish(Outcome::answered);
    }
    if (!in_.empty()) {  // pipelined requests left over from a full batch
        state_ = State::idle;
        const std::string rest = std::move(in_);
        in_.clear();
        return on_input(rest, now);
    }
    return await_input(now);
}

Connection::Action Connection::await_input(std::int64_t now) noexcept {
    const Config& c = rules_->config;
    if (parser_.in_body()) return set(State::body, Action::read, now + c.body_timeout.count());
    if (parser_.in_request()) return set(State::head, Action::read, request_started_ms_ + c.header_timeout.count());
    // Between requests while draining: close now, as on_drain does (a drain is told once).
    if (draining_) return finish(answers_ > 0 ? Outcome::answered : Outcome::timed_out);
    if (answers_ == 0) return set(State::idle, Action::read, request_started_ms_ + c.header_timeout.count());
    // Idle keep-alive: hold no answer buffer while waiting (nginx frees its buffers too).
    if (out_.capacity() > 15 && in_.empty()) spares().give(out_);
    return set(State::idle, Action::read, now + c.keepalive_timeout.count());
}

Connection::Action Connection::start_writing(std::int64_t now) noexcept {
    return set(close_after_ ? State::closing : State::writing, Action::write,
               now + rules_->config.write_timeout.count());
}

// Returns linger once (shut the write side down); afterwards the action is read.
Connection::Action Connection::start_lingering(std::int64_t now) noexcept {
    in_.clear();
    set(State::lingering, Action::read, now + rules_->config.linger_timeout.count());
    return Action::linger;
}

Connection::Action Connection::on_eof(std::int64_t) noexcept {
    if (state_ == State::writing || state_ == State::closing) {
        peer_eof_ = true;  // it may still read: finish the answers first
        return action_;
    }
    return finish(ending());
}

Connection::Action Connection::on_timeout(std::int64_t now) noexcept {
    if (now < deadline_ms_) return action_;
    switch (state_) {
        case State::idle: return finish(answers_ > 0 ? Outcome::answered : Outcome::timed_out);
        case State::head:
        case State::body:
            in_.clear();
            fail_request(http::Status::request_timeout);
            return start_writing(now);
        case State::writing:
        case State::closing: return finish(Outcome::timed_out);
        case State::lingering: return finish(ending());
        case State::closed: break;
    }
    return Action::close;
}

Connection::Action Connection::on_drain(std::int64_t) noexcept {
    draining_ = true;
    if (state_ == State::idle) return finish(answers_ > 0 ? Outcome::answered : Outcome::timed_out);
    return action_;
}

Connection::Action Connection::on_failed(bool client_gone) noexcept { return finish(client_gone ? ending() : Outcome::errors); }

// How a connection that ends now, without a failure of its own, is counted.
Outcome Connection::ending() const noexcept {
    if (error_answered_) return error_outcome_;
    return answers_ > 0 ? Outcome::answered : Outcome::closed_by_client;
}

void Connection::clear_output() noexcept {
    out_.clear();
    segments_.clear();
    open_from_ = out_total_ = out_sent_ = 0;
}

// The one place a connection ends: its outcome is set here, exactly once.
Connection::Action Connection::finish(Outcome o) noexcept {
    outcome_ = o;
    parser_.reset();
    clear_output();
    std::string().swap(in_);
    // The answer buffer goes to the next connection this thread opens: with a connection
    // per request, that saves a malloc and a free per connection.
    spares().give(out_);
    std::vector<Segment>().swap(segments_);
    return set(State::closed, Action::close, 0);
}

Connection::Timer Connection::timer() const noexcept {
    switch (state_) {
        case State::idle: return answers_ > 0 ? Timer::keepalive : Timer::header;
        case State::head: return Timer::header;
        case State::body: return Timer::body;
        case State::writing:
        case State::closing: return Timer::write;
        case State::lingering:
        case State::closed: break;
    }
    return Timer::linger;
}

Connection::Action Connection::set(State s, Action a, std::int64_t deadline) noexcept {
    state_ = s;
    action_ = a;
    deadline_ms_ = deadline;
    return a;
}

}  // namespace okserve
