#include "server/access_log.hpp"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

#include <fcntl.h>
#include <unistd.h>

namespace okserve {

namespace {

// Each thread writes to one stripe, picked once: threads spread over the stripes.
std::size_t my_stripe(std::size_t count) noexcept {
    static std::atomic<std::size_t> next{0};
    thread_local const std::size_t mine = next.fetch_add(1, std::memory_order_relaxed);
    return mine % count;
}

// The request line as sent, with control bytes, quotes and backslashes escaped so that
// one request stays one line.
void append_escaped(std::string& out, std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 15];
        } else {
            out += ch;
        }
    }
}

}  // namespace

AccessLog::AccessLog(const std::string& path) : path_(path) {
    open_file();
    writer_ = std::thread([this] { run(); });
}

bool AccessLog::open_file() {
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0 && !reported_) {
        std::fprintf(stderr, "okserve: --access-log %s: %s (answers go on; lines are dropped and counted)\n",
                     path_.c_str(), std::strerror(errno));
        reported_ = true;
    }
    const int old = fd_.exchange(fd);
    if (old >= 0) ::close(old);
    return fd >= 0;
}

AccessLog::~AccessLog() {
    {
        std::lock_guard lock(wake_mutex_);
        stopping_ = true;
    }
    wake_.notify_one();
    writer_.join();
    if (fd_ >= 0) ::close(fd_);
}

void AccessLog::format(std::string& out, std::string_view peer, std::time_t when, std::string_view request_line,
                       int status, std::uint64_t bytes) {
    static constexpr const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                             "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    std::tm tm{};
    ::gmtime_r(&when, &tm);
    char stamp[40];
    std::snprintf(stamp, sizeof stamp, "[%02d/%s/%04d:%02d:%02d:%02d +0000]", tm.tm_mday, months[tm.tm_mon % 12],
                  tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    out.append(peer.empty() ? "-" : peer).append(" - - ").append(stamp).append(" \"");
    append_escaped(out, request_line);
    out += "\" ";
    out += std::to_string(status);
    out += ' ';
    out += bytes == 0 ? std::string("-") : std::to_string(bytes);
    out += '\n';
}

void AccessLog::record(std::string_view peer, std::string_view request_line, int status, std::uint64_t bytes) noexcept {
    Stripe& s = stripes_[my_stripe(stripe_count)];
    std::lock_guard lock(s.mutex);
    if (fd_.load(std::memory_order_relaxed) < 0 || s.text.size() >= stripe_bytes_max) {
        dropped_.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    try {
        format(s.text, peer, std::time(nullptr), request_line, status, bytes);
        ++s.lines;
    } catch (...) {  // out of memory: the line is lost, the answer is not
        dropped_.fetch_add(1, std::memory_order_relaxed);
    }
}

void AccessLog::run() {
    std::unique_lock lock(wake_mutex_);
    for (;;) {
        wake_.wait_for(lock, std::chrono::milliseconds(100),
                       [this] { return stopping_ || reopen_.load(std::memory_order_relaxed); });
        const bool last = stopping_;
        lock.unlock();
        flush();  // what was written for the old file goes to it
        if (reopen_.exchange(false)) open_file();
        if (last) return;
        lock.lock();
    }
}

// Takes each stripe's text (holding its lock only for a swap) and writes it out.
void AccessLog::flush() {
    std::string text;
    for (Stripe& s : stripes_) {
        std::uint64_t lines = 0;
        {
            std::lock_guard lock(s.mutex);
            text.swap(s.text);
            lines = s.lines;
            s.lines = 0;
        }
        std::size_t at = 0;
        const int fd = fd_.load(std::memory_order_relaxed);
        while (at < text.size() && fd >= 0) {
            const ssize_t n = ::write(fd, text.data() + at, text.size() - at);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                if (!reported_) {
                    std::fprintf(stderr, "okserve: --access-log: write failed: %s (answers go on; lines are dropped and counted)\n",
                                 n < 0 ? std::strerror(errno) : "nothing written");
                    reported_ = true;
                }
                break;
            }
            at += static_cast<std::size_t>(n);
        }
        if (at == text.size()) {
            written_.fetch_add(lines, std::memory_order_relaxed);
        } else {
            // Count the lines lost: whole lines after the last newline that made it out.
            std::uint64_t lost = 0;
            for (std::size_t i = at; i < text.size(); ++i) lost += text[i] == '\n';
            written_.fetch_add(lines - lost, std::memory_order_relaxed);
            dropped_.fetch_add(lost, std::memory_order_relaxed);
        }
        text.clear();
        if (text.capacity() > stripe_bytes_max) std::string().swap(text);
    }
}

}  // namespace okserve
