#include "server/uring_loop.hpp"

#if OKSERVE_HAVE_URING

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "server/acceptor.hpp"
#include "server/poller.hpp"
#include "server/socket_driver.hpp"
#include "server/sys/error.hpp"
#include "server/sys/eventfd.hpp"

namespace okserve {

namespace {

constexpr unsigned ring_entries = 1024;
constexpr int buffer_group = 0;

bool is_client_gone(int err) noexcept { return err == ECONNRESET || err == EPIPE || err == ETIMEDOUT; }

// Sets up the ring; returns 0 or a negative errno. One thread submits and completion work
// runs only when it waits (single issuer, deferred task running: 6.1), so there is no
// interrupt per completion. Such a ring starts disabled: the loop's thread enables it and so
// becomes its one issuer. Older kernels refuse the flags, and we try lesser ones.
int init_ring(io_uring& ring, bool& disabled) {
    int err = -EINVAL;
    for (unsigned flags : {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED,
                           IORING_SETUP_COOP_TASKRUN, 0u}) {
        io_uring_params p{};
        p.flags = flags;
        err = io_uring_queue_init_params(ring_entries, &ring, &p);
        disabled = (flags & IORING_SETUP_R_DISABLED) != 0;
        if (err != -EINVAL) break;
    }
    return err;
}

// Registers a provided buffer ring of `count` entries (liburing 2.3 has no helper for the
// allocation: the ring is page-aligned memory of our own). Returns 0 or a negative errno.
int register_buffers(io_uring& ring, unsigned count, io_uring_buf_ring*& out) {
    const std::size_t bytes = count * sizeof(io_uring_buf);
    void* mem = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED) return -errno;
    auto* br = static_cast<io_uring_buf_ring*>(mem);
    io_uring_buf_ring_init(br);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uint64_t>(br);
    reg.ring_entries = count;
    reg.bgid = buffer_group;
    if (const int err = io_uring_register_buf_ring(&ring, &reg, 0); err != 0) {
        ::munmap(mem, bytes);
        return err;
    }
    out = br;
    return 0;
}

}  // namespace

bool UringLoop::available(std::string& why) {
    if (const char* off = std::getenv("OKSERVE_URING_DISABLE"); off && *off && std::strcmp(off, "0") != 0) {
        why = "disabled by OKSERVE_URING_DISABLE";
        return false;
    }
    io_uring ring{};
    bool disabled = false;
    if (const int err = init_ring(ring, disabled); err < 0) {
        why = "io_uring_queue_init: " + std::string(errno_text(-err));
        return false;
    }
    bool ok = true;
    if (!(ring.features & IORING_FEAT_SUBMIT_STABLE)) {
        why = "the kernel does not copy a request's data when it is submitted (5.5)";
        ok = false;
    } else if (io_uring_probe* probe = io_uring_get_probe_ring(&ring)) {
        for (int op : {IORING_OP_ACCEPT, IORING_OP_RECV, IORING_OP_SEND, IORING_OP_SENDMSG, IORING_OP_READ}) {
            if (!io_uring_opcode_supported(probe, op)) {
                why = "the kernel lacks io_uring opcode " + std::to_string(op);
                ok = false;
            }
        }
        io_uring_free_probe(probe);
    } else {
        why = "io_uring_get_probe failed";
        ok = false;
    }
    io_uring_buf_ring* br = nullptr;
    if (ok) {
        if (const int err = register_buffers(ring, 8, br); err != 0) {
            why = "provided buffer rings: " + std::string(errno_text(-err));
            ok = false;
        } else {
            ::munmap(br, 8 * sizeof(io_uring_buf));
        }
    }
    io_uring_queue_exit(&ring);
    return ok;
}

// Everything that can fail is done here, at start-up, so a loop never starts half made.
UringLoop::UringLoop(const ConnectionRules& rules, Tally& tally, Options options)
    : rules_(rules), tally_(tally), options_(options), wake_(make_eventfd()) {
    if (const int err = init_ring(ring_, disabled_); err < 0) throw SysError("start", "io_uring_queue_init", -err);
    ring_ready_ = true;
    if (const char* v = std::getenv("OKSERVE_URING_BUFFERS"); v && *v) {
        const unsigned long n = std::strtoul(v, nullptr, 10);
        if (n >= 1 && n <= 4096 && (n & (n - 1)) == 0) buffer_count_ = static_cast<unsigned>(n);
    }
    if (const char* v = std::getenv("OKSERVE_URING_RECV"); v && std::strcmp(v, "single") == 0) multishot_ = false;
    if (const int err = register_buffers(ring_, buffer_count_, buffers_); err != 0) {
        throw SysError("start", "io_uring_register_buf_ring", -err);
    }
    buffer_memory_.reset(new char[std::size_t{buffer_count_} * buffer_size]);
    for (unsigned i = 0; i < buffer_count_; ++i) {
        io_uring_buf_ring_add(buffers_, buffer_memory_.get() + std::size_t{i} * buffer_size, buffer_size,
                              static_cast<unsigned short>(i), io_uring_buf_ring_mask(buffer_count_), static_cast<int>(i));
    }
    io_uring_buf_ring_advance(buffers_, static_cast<int>(buffer_count_));
}

UringLoop::~UringLoop() {
    if (ring_ready_) io_uring_queue_exit(&ring_);
    if (buffers_ != nullptr) ::munmap(buffers_, buffer_count_ * sizeof(io_uring_buf));
}

// ---- the loop --------------------------------------------------------------------------

void UringLoop::run() {
    // The thread that enables a single-issuer ring is the one allowed to submit to it.
    // (liburing 2.3 declares io_uring_enable_rings but does not export it: the system call.)
    if (disabled_) ::syscall(__NR_io_uring_register, ring_.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0);
    // Each io_uring_enter then names the ring by its slot in this thread's table instead of
    // by file descriptor, so the kernel skips looking the descriptor up (5.18). Where that
    // fails, liburing keeps using the descriptor.
    (void)io_uring_register_ring_fd(&ring_);
    arm_wake();
    arm_alarm();
    if (options_.listen_fd >= 0) arm_accept();
    std::int64_t now = now_ms();
    for (;;) {
        ++pass_;
        // One system call: submit everything prepared since the last pass, wait for a
        // completion. Deadlines come as one: the alarm's read completes by the earliest
        // (a wait with a timeout would read the clock and arm a timer on every pass).
        busy_.store(false, std::memory_order_relaxed);
        if (starved_.empty()) {
            alarm_.ring_by(next_due());
            io_uring_submit_and_wait(&ring_, 1);
        } else {  // receives to re-arm after this pass: do not sleep
            io_uring_cqe* first = nullptr;
            __kernel_timespec zero{};
            io_uring_submit_and_wait_timeout(&ring_, &first, 1, &zero, nullptr);
        }
        busy_.store(true, std::memory_order_relaxed);
        gathers_.clear();  // submitted: the kernel holds its own copies
        now = now_ms();
        unsigned head = 0, seen = 0;
        io_uring_cqe* cqe = nullptr;
        io_uring_for_each_cqe(&ring_, head, cqe) {
            on_completion(*cqe, now);
            ++seen;
        }
        io_uring_cq_advance(&ring_, seen);
        if (commands_.load(std::memory_order_acquire) & cut_flag) {
            close_all();
            io_uring_submit(&ring_);  // the closes prepared this pass
            return;
        }
        // Receives that found the buffer ring empty: the buffers this pass gave back are
        // there again. One still writing is armed when it asks to read.
        rearm_.clear();
        rearm_.swap(starved_);
        for (std::uint32_t index : rearm_) {
            Slot& s = *slots_[index];
            if (s.fd && !s.closing && s.conn.action() == Connection::Action::read) arm_recv(s);
        }
        expire(now);
        while (!waiting_.empty() && has_room()) {
            Fd fd = std::move(waiting_.front());
            waiting_.erase(waiting_.begin());
            start(std::move(fd), now);
        }
        if (accept_paused_ && resume_accept_at_ >= 0 && now >= resume_accept_at_) {
            if (waiting_.empty() && has_room()) {
                arm_accept();
            } else {
                resume_accept_at_ = now + 10;  // still full: look again later, never spin
            }
        }
        if (draining_ && open_ == 0 && closing_ == 0) {
            io_uring_submit(&ring_);  // the closes prepared this pass
            return;
        }
    }
}

std::int64_t UringLoop::next_due() const noexcept {
    std::int64_t due = accept_paused_ ? resume_accept_at_ : -1;
    for (const TimerList& t : timers_) {
        const std::int64_t d = t.next_due();
        if (d >= 0 && (due < 0 || d < due)) due = d;
    }
    return due;
}

void UringLoop::on_completion(const io_uring_cqe& cqe, std::int64_t now) {
    const auto op = static_cast<Op>(cqe.user_data >> 56);
    if (op == Op::accept) return on_accept(cqe.res, (cqe.flags & IORING_CQE_F_MORE) != 0, now);
    if (op == Op::wake) return on_wake(now);
    if (op == Op::alarm) {  // expire() after this pass finds what is due
        alarm_.forget();
        return arm_alarm();
    }
    if (op == Op::done) return;
    const auto index = static_cast<std::uint32_t>(cqe.user_data);
    if (index >= slots_.size()) return;
    Slot& s = *slots_[index];
    if (op == Op::recv) {
        if ((cqe.flags & IORING_CQE_F_MORE) == 0) {  // the receive has ended (single-shot: always)
            s.receiving = s.stopping = false;
            --s.in_flight;
        }
        on_recv(s, cqe.res, cqe.flags, now);
    } else {
        s.sending = false;
        --s.in_flight;
        on_send(s, cqe.res, now);
    }
    if (s.closing && s.in_flight == 0) release(s);
}

void UringLoop::on_accept(int res, bool more, std::int64_t now) {
    if (!more) accepting_ = false;  // the multishot request ended: arm it again below
    if (res >= 0) {
        Fd fd(res);
        tally_.add(Tally::accepted);
        if (has_room() || make_room(now)) {
            start(std::move(fd), now);
        } else if (options_.reject_when_full) {
            tally_.add(Tally::queue_full);
            if (options_.rejecter == nullptr || !options_.rejecter->adopt(std::move(fd), true)) tally_.add(Tally::rejected);
        } else {
            // Full: this one waits (unread) until a connection closes, and accepting stops;
            // the kernel's backlog holds the rest. Another loop may free room first: look
            // again every 10 ms.
            tally_.add(Tally::queue_full);
            waiting_.push_back(std::move(fd));
            accept_paused_ = true;
            resume_accept_at_ = now + 10;
            cancel_accept();
        }
    } else if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM) {
        tally_.add(Tally::accept_errors);
        accept_paused_ = true;
        resume_accept_at_ = now + back_off_ms;
    }
    if (!accepting_ && !accept_paused_ && !draining_) arm_accept();
}

void UringLoop::on_recv(Slot& s, int res, std::uint32_t flags, std::int64_t now) {
    const bool has_buffer = (flags & IORING_CQE_F_BUFFER) != 0;
    const auto buffer = static_cast<std::uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
    if (s.closing) {
        if (has_buffer) recycle(buffer);
        return;
    }
    using Kind = Connection::Event::Kind;
    Connection::Action a;
    if (res > 0) {
        const auto n = static_cast<std::uint32_t>(res);
        if (s.pass != pass_) {
            s.pass = pass_;
            s.pass_bytes = 0;
        }
        s.pass_bytes += n;
        // A multishot receive goes on while the connection writes: count what it takes then.
        if (s.conn.action() != Connection::Action::read) s.held += n;
        const char* bytes = buffer_memory_.get() + std::size_t{buffer} * buffer_size;
        // The connection copies what it does not consume: the buffer goes back at once.
        const std::uint64_t served = s.conn.served();
        a = s.conn.on({.kind = Kind::input, .now_ms = now, .bytes = {bytes, n}, .now_ns = fine_clock(s.conn)});
        recycle(buffer);
        after_input(s.conn, served);
    } else if (res == 0) {
        a = s.conn.on({Kind::eof, now});
    } else if (res == -ENOBUFS) {
        // Every buffer is in use (this ends a multishot receive): armed again after this pass.
        if (!s.receiving) starved_.push_back(s.index);
        return;
    } else if (res == -EINVAL && s.multishot && !s.receiving) {
        multishot_ = false;  // a kernel before 6.0: single-shot receives from now on
        a = s.conn.action();
    } else if (res == -ECANCELED || res == -EINTR || res == -EAGAIN) {
        a = s.conn.action();
    } else {
        a = s.conn.on({.kind = Kind::failed, .now_ms = now, .client_gone = is_client_gone(-res)});
    }
    step(s, a, now);
}

void UringLoop::on_send(Slot& s, int res, std::int64_t now) {
    if (s.closing) return;
    using Kind = Connection::Event::Kind;
    Connection::Action a;
    if (res > 0) {
        a = s.conn.on({.kind = Kind::sent, .now_ms = now, .count = static_cast<std::size_t>(res), .now_ns = fine_clock(s.conn)});
        after_sent(s.conn, &tally_);
    } else if (res == -EINTR || res == -EAGAIN) {
        a = s.conn.action();
    } else {
        a = s.conn.on({.kind = Kind::failed, .now_ms = now, .client_gone = is_client_gone(-res)});
    }
    step(s, a, now);
}

void UringLoop::on_wake(std::int64_t now) {
    arm_wake();
    const std::uint32_t c = commands_.load(std::memory_order_acquire);
    if ((c & drain_flag) && !draining_) drain_all(now);
}

// ---- requests --------------------------------------------------------------------------

io_uring_sqe* UringLoop::sqe() {
    io_uring_sqe* e = io_uring_get_sqe(&ring_);
    while (e == nullptr) {  // the submission queue is full: hand it to the kernel first
        io_uring_submit(&ring_);
        e = io_uring_get_sqe(&ring_);
    }
    return e;
}

// A request whose outcome changes nothing here (a close, a cancel): its completion is
// ignored, and where the kernel can (5.17), a successful one posts none at all. A
// connection per request then reaps three completions instead of four.
void UringLoop::unheard(io_uring_sqe* e) noexcept {
    io_uring_sqe_set_data64(e, data(Op::done, 0, 0));
    if (ring_.features & IORING_FEAT_CQE_SKIP) e->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

void UringLoop::cancel_accept() {
    if (!accepting_) return;
    io_uring_sqe* e = sqe();
    io_uring_prep_cancel64(e, data(Op::accept, 0, 0), 0);
    unheard(e);
}

void UringLoop::arm_accept() {
    accept_paused_ = false;
    resume_accept_at_ = -1;
    if (accepting_ || draining_ || options_.listen_fd < 0) return;
    io_uring_sqe* e = sqe();
    io_uring_prep_multishot_accept(e, options_.listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    io_uring_sqe_set_data64(e, data(Op::accept, 0, 0));
    accepting_ = true;
}

void UringLoop::arm_wake() {
    io_uring_sqe* e = sqe();
    io_uring_prep_read(e, wake_.get(), &wake_value_, sizeof wake_value_, 0);
    io_uring_sqe_set_data64(e, data(Op::wake, 0, 0));
}

void UringLoop::arm_alarm() {
    io_uring_sqe* e = sqe();
    io_uring_prep_read(e, alarm_.fd(), &alarm_value_, sizeof alarm_value_, 0);
    io_uring_sqe_set_data64(e, data(Op::alarm, 0, 0));
}

// A connection's first receive is single-shot: a connection per request then needs no
// cancel before its close. Once it has had an answer (keep-alive), the receive is multishot.
void UringLoop::arm_recv(Slot& s) {
    if (s.receiving) return;
    io_uring_sqe* e = sqe();
    s.multishot = multishot_ && s.conn.answers() > 0;
    if (s.multishot) {
        io_uring_prep_recv_multishot(e, s.fd.get(), nullptr, 0, 0);
    } else {
        io_uring_prep_recv(e, s.fd.get(), nullptr, 0, 0);
    }
    e->flags |= IOSQE_BUFFER_SELECT;
    e->buf_group = buffer_group;
    ++s.recv_seq;
    io_uring_sqe_set_data64(e, data(Op::recv, s.index, s.recv_seq));
    s.receiving = true;
    s.stopping = false;
    ++s.in_flight;
}

// Cancels the armed receive; it ends with a completion without IORING_CQE_F_MORE (bytes
// taken before that are delivered first, none is lost).
void UringLoop::stop_recv(Slot& s) {
    if (!s.receiving || s.stopping) return;
    io_uring_sqe* e = sqe();
    io_uring_prep_cancel64(e, data(Op::recv, s.index, s.recv_seq), 0);
    unheard(e);
    s.stopping = true;
}

void UringLoop::arm_send(Slot& s) {
    if (s.sending) return;
    Connection::Slice slices[4];
    const std::size_t n = s.conn.output(slices, 4);
    io_uring_sqe* e = sqe();
    if (n == 1) {  // the usual answer: one run of bytes, no message header to copy in
        io_uring_prep_send(e, s.fd.get(), slices[0].data, slices[0].size, MSG_NOSIGNAL);
    } else {
        Gather& g = gathers_.emplace_back();
        for (std::size_t i = 0; i < n; ++i) g.iov[i] = {const_cast<char*>(slices[i].data), slices[i].size};
        g.msg = msghdr{};
        g.msg.msg_iov = g.iov;
        g.msg.msg_iovlen = n;
        io_uring_prep_sendmsg(e, s.fd.get(), &g.msg, MSG_NOSIGNAL);
    }
    io_uring_sqe_set_data64(e, data(Op::send, s.index, s.generation));
    s.sending = true;
    ++s.in_flight;
}

void UringLoop::recycle(std::uint16_t buffer) {
    io_uring_buf_ring_add(buffers_, buffer_memory_.get() + std::size_t{buffer} * buffer_size, buffer_size, buffer,
                          io_uring_buf_ring_mask(buffer_count_), 0);
    io_uring_buf_ring_advance(buffers_, 1);
}

// ---- connections -----------------------------------------------------------------------

void UringLoop::start(Fd fd, std::int64_t now) {
    std::uint32_t index;
    if (!free_.empty()) {
        index = free_.back();
        free_.pop_back();
    } else {
        index = static_cast<std::uint32_t>(slots_.size());
        slots_.push_back(std::make_unique<Slot>(rules_));
        slots_.back()->index = index;
    }
    Slot& s = *slots_[index];
    s.fd = std::move(fd);
    s.in_flight = 0;
    s.receiving = s.multishot = s.stopping = s.sending = s.closing = false;
    s.held = s.pass_bytes = 0;
    count_open(1);
    Connection::Action a = s.conn.open(now);
    note_peer(s.conn, s.fd.get());
    if (draining_) a = s.conn.on({Connection::Event::Kind::drain, now});
    step(s, a, now);
}

// Turns the connection's next action into a request to the ring.
void UringLoop::step(Slot& s, Connection::Action a, std::int64_t now) {
    count_answers(s.conn, tally_);
    switch (a) {
        case Connection::Action::close: return finish(s);
        case Connection::Action::linger:
            ::shutdown(s.fd.get(), SHUT_WR);  // rare (error answers): a plain system call
            s.held = 0;
            arm_recv(s);
            break;
        case Connection::Action::read:
            s.held = 0;
            arm_recv(s);
            break;
        case Connection::Action::write: arm_send(s); break;
    }
    // Flow control for a multishot receive: stop it when the connection has taken
    // hold_max bytes it cannot answer yet (they wait in its input; the rest waits in the
    // socket, and TCP pushes back), or its turn's budget in this pass (the reactor's
    // fairness: others go first). It is armed again when the connection asks to read.
    if (s.receiving && s.multishot && !s.stopping) {
        if (s.held > hold_max) {
            stop_recv(s);
        } else if (s.pass == pass_ && s.pass_bytes >= turn_budget_bytes) {
            stop_recv(s);
            tally_.add(Tally::yields);
        }
    }
    set_timer(s);
    (void)now;
}

// The connection has ended: count it once, and close the socket once the kernel holds no
// request for it (shutting it down makes a pending receive or send complete at once).
void UringLoop::finish(Slot& s) {
    TimerList::unlink(s);
    tally_.count(s.conn.outcome());
    s.closing = true;
    count_open(-1);
    ++closing_;
    if (s.in_flight == 0) return release(s);
    if (s.sending) {
        ::shutdown(s.fd.get(), SHUT_RDWR);  // a send the client may never let finish
    } else {
        stop_recv(s);  // only a receive: cancelled through the ring, no system call
    }
}

void UringLoop::release(Slot& s) {
    // Closed by the ring too, in the next batch: no system call of its own. The number
    // cannot be handed out again before that close runs.
    io_uring_sqe* e = sqe();
    io_uring_prep_close(e, s.fd.release());
    unheard(e);
    s.closing = false;
    ++s.generation;
    --closing_;
    free_.push_back(s.index);
    if (!waiting_.empty() && has_room()) {
        Fd fd = std::move(waiting_.front());
        waiting_.erase(waiting_.begin());
        start(std::move(fd), now_ms());
    }
    if (accept_paused_ && resume_accept_at_ >= 0 && waiting_.empty() && has_room() && !draining_) arm_accept();
}

void UringLoop::set_timer(Slot& s) {
    if (s.conn.state() == Connection::State::closed) return;
    const auto kind = static_cast<std::uint8_t>(s.conn.timer());
    const std::int64_t due = s.conn.deadline_ms();
    if (s.linked() && s.timer_list == kind && s.due_ms == due) return;
    timers_[kind].push_back(s, due);
    s.timer_list = kind;
}

void UringLoop::expire(std::int64_t now) {
    for (TimerList& list : timers_) {
        for (TimerLink* t = list.front(); t != nullptr && t->due_ms <= now; t = list.front()) {
            Slot& s = static_cast<Slot&>(*t);
            TimerList::unlink(s);
            step(s, s.conn.on({Connection::Event::Kind::timeout, now}), now);
        }
    }
}

bool UringLoop::has_room() const noexcept {
    const std::size_t open = options_.shared_open ? options_.shared_open->load(std::memory_order_relaxed) : open_;
    return open < options_.max_connections;
}

// At the limit, the oldest idle keep-alive connection makes room (as nginx does).
bool UringLoop::make_room(std::int64_t now) {
    TimerLink* oldest = timers_[static_cast<std::size_t>(Connection::Timer::keepalive)].front();
    if (oldest == nullptr) return false;
    Slot& s = static_cast<Slot&>(*oldest);
    tally_.add(Tally::evicted);
    step(s, s.conn.on({Connection::Event::Kind::evict, now}), now);
    return has_room();
}

void UringLoop::count_open(int delta) noexcept {
    open_ += static_cast<std::size_t>(delta);
    if (options_.shared_open) options_.shared_open->fetch_add(static_cast<std::size_t>(delta), std::memory_order_relaxed);
}

// ---- shutdown --------------------------------------------------------------------------

void UringLoop::begin_drain() {
    commands_.fetch_or(drain_flag, std::memory_order_release);
    notify(wake_);
}

void UringLoop::cut_off() {
    commands_.fetch_or(cut_flag, std::memory_order_release);
    notify(wake_);
}

void UringLoop::drain_all(std::int64_t now) {
    draining_ = true;
    cancel_accept();
    std::vector<Fd> waiting;
    waiting.swap(waiting_);
    for (Fd& fd : waiting) start(std::move(fd), now);  // started draining: they close at once
    for (auto& p : slots_) {
        Slot& s = *p;
        if (!s.fd || s.closing) continue;
        step(s, s.conn.on({Connection::Event::Kind::drain, now}), now);
    }
}

// Connections the drain timeout cut off are counted as timed out, so the books balance.
void UringLoop::close_all() {
    for (auto& p : slots_) {
        Slot& s = *p;
        if (!s.fd) continue;
        if (!s.closing) {
            TimerList::unlink(s);
            tally_.add(Tally::timed_out);
            count_open(-1);
        }
        s.fd.reset();  // the ring is torn down with the loop: nothing in it outlives this
    }
    tally_.add(Tally::timed_out, waiting_.size());
    waiting_.clear();
}

}  // namespace okserve

#endif  // OKSERVE_HAVE_URING
