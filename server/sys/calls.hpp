// okserve's hot system calls, made straight to the kernel. Knows nothing of connections.
//
// glibc makes recv, send, sendmsg, accept4 and close thread cancellation points: in a process
// with more than one thread, each call switches the thread to asynchronous cancellation and
// back around the system call (two function calls and two atomic operations: about 1% of the
// CPU a keep-alive answer costs, and some 60 instructions per connection for accept4 and
// close). okserve never cancels a thread, so the hot path uses syscall(2), which is no
// cancellation point. Same arguments, same return value, same errno.
//
// Under the sanitizers the libc functions stay: their interceptors are how ThreadSanitizer
// sees the calls and how AddressSanitizer checks the buffers the kernel reads and fills.
#pragma once

#include <cstddef>

#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace okserve::sys {

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define OKSERVE_LIBC_CALLS 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define OKSERVE_LIBC_CALLS 1
#endif
#endif

inline ssize_t recv(int fd, void* buf, std::size_t len, int flags) noexcept {
#ifdef OKSERVE_LIBC_CALLS
    return ::recv(fd, buf, len, flags);
#else
    return ::syscall(SYS_recvfrom, fd, buf, len, flags, nullptr, nullptr);
#endif
}

inline ssize_t send(int fd, const void* buf, std::size_t len, int flags) noexcept {
#ifdef OKSERVE_LIBC_CALLS
    return ::send(fd, buf, len, flags);
#else
    return ::syscall(SYS_sendto, fd, buf, len, flags, nullptr, 0);
#endif
}

inline ssize_t sendmsg(int fd, const msghdr* msg, int flags) noexcept {
#ifdef OKSERVE_LIBC_CALLS
    return ::sendmsg(fd, msg, flags);
#else
    return ::syscall(SYS_sendmsg, fd, msg, flags);
#endif
}

inline int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) noexcept {
#ifdef OKSERVE_LIBC_CALLS
    return ::accept4(fd, addr, len, flags);
#else
    return static_cast<int>(::syscall(SYS_accept4, fd, addr, len, flags));
#endif
}

inline int close(int fd) noexcept {
#ifdef OKSERVE_LIBC_CALLS
    return ::close(fd);
#else
    return static_cast<int>(::syscall(SYS_close, fd));
#endif
}

}  // namespace okserve::sys
