#include "server/socket_driver.hpp"

#include <cerrno>
#include <memory>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "server/poller.hpp"
#include "server/sys/calls.hpp"
#include "server/work.hpp"

namespace okserve {

namespace {

using Action = Connection::Action;
using Event = Connection::Event;

bool is_client_gone(int err) noexcept { return err == ECONNRESET || err == EPIPE || err == ETIMEDOUT; }

// One read buffer per thread, shared by every connection it drives: a waiting connection
// holds no buffer.
char* read_buffer() noexcept {
    thread_local std::unique_ptr<char[]> buf(new char[read_chunk]);
    return buf.get();
}

struct Io {
    Action next;
    std::size_t bytes;  // read or written; 0 when the call would block
    bool blocked;
};

Io do_read(Connection& c, int fd, std::int64_t now) noexcept {
    char* buf = read_buffer();
    for (;;) {
        const ssize_t n = sys::recv(fd, buf, read_chunk, 0);
        if (n > 0) {
            const auto got = static_cast<std::size_t>(n);
            const std::uint64_t served = c.served();
            const Action next = c.on({.kind = Event::Kind::input, .now_ms = now, .bytes = {buf, got}, .now_ns = fine_clock(c)});
            after_input(c, served);
            return {next, got, false};
        }
        if (n == 0) return {c.on({Event::Kind::eof, now}), 0, false};
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return {Action::read, 0, true};
        return {c.on({.kind = Event::Kind::failed, .now_ms = now, .client_gone = is_client_gone(errno)}), 0, false};
    }
}

Io do_write(Connection& c, int fd, std::int64_t now, Tally* tally) noexcept {
    Connection::Slice slices[Connection::max_slices];
    iovec iov[Connection::max_slices];
    const std::size_t count = c.output(slices, Connection::max_slices);
    for (std::size_t i = 0; i < count; ++i) iov[i] = {const_cast<char*>(slices[i].data), slices[i].size};
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = count;
    for (;;) {
        // One slice (the usual keep-alive answer) goes by send(2): the kernel's sendmsg path
        // first copies the message header and the iovec array in, which send has no need of.
        const ssize_t n = count == 1 ? sys::send(fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL)
                                     : sys::sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (n > 0) {
            const auto put = static_cast<std::size_t>(n);
            const Action next = c.on({.kind = Event::Kind::sent, .now_ms = now, .count = put, .now_ns = fine_clock(c)});
            after_sent(c, tally);
            return {next, put, false};
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return {Action::write, 0, true};
        const int err = n < 0 ? errno : EPIPE;
        return {c.on({.kind = Event::Kind::failed, .now_ms = now, .client_gone = is_client_gone(err)}), 0, false};
    }
}

}  // namespace

std::int64_t fine_clock(const Connection& c) noexcept { return c.rules().fine_time ? now_ns() : 0; }

void note_peer(Connection& c, int fd) {
    if (c.rules().access_log == nullptr) return;
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    char text[INET6_ADDRSTRLEN] = "-";
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
        if (ss.ss_family == AF_INET) ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, text, sizeof text);
        else if (ss.ss_family == AF_INET6) ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr, text, sizeof text);
    }
    c.set_peer(text);
}

Turn drive(Connection& c, int fd, Action a, std::int64_t now, bool peer_closed, Tally* tally) noexcept {
    std::size_t spent = 0;
    bool drained = false;  // a short read emptied the socket
    for (;;) {
        if (a == Action::close) return Turn::closed;
        if (a == Action::linger) {
            ::shutdown(fd, SHUT_WR);
            a = Action::read;
        }
        if (a == Action::read && drained && !peer_closed) return Turn::wait_readable;
        if (spent >= turn_budget_bytes) return Turn::yielded;
        const Io io = a == Action::read ? do_read(c, fd, now) : do_write(c, fd, now, tally);
        if (io.blocked) return a == Action::read ? Turn::wait_readable : Turn::wait_writable;
        if (a == Action::read) drained = io.bytes != 0 && io.bytes < read_chunk;
        spent += io.bytes;
        a = io.next;
    }
}

}  // namespace okserve
