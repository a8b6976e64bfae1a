// okserve access log (--access-log FILE): one line per request in the common log format,
//   127.0.0.1 - - [29/Nov/2026:02:30:00 +0000] "GET / HTTP/1.1" 200 3
// Request threads only append to an in-memory buffer (one of a few stripes, each with its
// own lock, so threads rarely meet); a writer thread of its own flushes the buffers to the
// file every 100 ms. A slow or full disk never blocks an answer: past a bound, lines are
// dropped and counted; a failed write is reported once on stderr and counted.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <ctime>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace okserve {

class AccessLog {
public:
    // Opens (appends to, creates) the file. A file that cannot be opened is reported once on
    // stderr; the server runs on and every line counts as dropped.
    explicit AccessLog(const std::string& path);
    ~AccessLog();  // flushes what is buffered and stops the writer
    AccessLog(const AccessLog&) = delete;
    AccessLog& operator=(const AccessLog&) = delete;

    // From any thread. bytes: the answer's body bytes ("-" when 0, as the format has it).
    void record(std::string_view peer, std::string_view request_line, int status, std::uint64_t bytes) noexcept;

    // Any thread: the writer closes the file and opens the path again before its next
    // write (SIGHUP, after logrotate moved the file away).
    void reopen() noexcept {
        reopen_.store(true, std::memory_order_relaxed);
        wake_.notify_one();
    }

    std::uint64_t written() const noexcept { return written_.load(std::memory_order_relaxed); }
    std::uint64_t dropped() const noexcept { return dropped_.load(std::memory_order_relaxed); }

    // Appends one common-log-format line to out; exposed for tests.
    static void format(std::string& out, std::string_view peer, std::time_t when, std::string_view request_line,
                       int status, std::uint64_t bytes);

    static constexpr std::size_t stripe_bytes_max = 4 << 20;  // per stripe, before lines are dropped

private:
    struct alignas(64) Stripe {
        std::mutex mutex;
        std::string text;
        std::uint64_t lines = 0;
    };
    static constexpr std::size_t stripe_count = 8;

    void run();
    void flush();

    bool open_file();  // the writer's; false (reported once) when it cannot

    std::string path_;
    std::atomic<int> fd_{-1};  // written by the writer (reopen), read by record()
    std::atomic<bool> reopen_{false};
    std::array<Stripe, stripe_count> stripes_;
    std::atomic<std::uint64_t> written_{0};
    std::atomic<std::uint64_t> dropped_{0};
    bool reported_ = false;  // writer thread only
    std::mutex wake_mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;  // guarded by wake_mutex_
    std::thread writer_;
};

}  // namespace okserve
