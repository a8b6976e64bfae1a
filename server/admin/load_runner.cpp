#include "server/admin/load_runner.hpp"

#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstring>
#include <vector>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server/admin/metrics.hpp"
#include "server/work.hpp"

extern char** environ;

namespace okserve::admin {

namespace {

bool to_uint(std::string_view v, std::uint64_t& out) {
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
    return ec == std::errc() && end == v.data() + v.size();
}

bool to_double(std::string_view v, double& out) {
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
    return ec == std::errc() && end == v.data() + v.size();
}

std::string fmt(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

}  // namespace

std::string parse_load_params(std::string_view query, LoadParams& out) {
    LoadParams p;
    bool have_duration = false;
    while (!query.empty()) {
        const std::size_t amp = query.find('&');
        const std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
        if (pair.empty()) continue;
        const std::size_t eq = pair.find('=');
        const std::string_view key = pair.substr(0, eq);
        const std::string_view value = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
        std::uint64_t n = 0;
        if (key == "requests") {
            if (!to_uint(value, n) || n > LoadParams::max_requests) return "requests: a count 0.." + std::to_string(LoadParams::max_requests);
            p.requests = n;
        } else if (key == "duration") {
            const auto d = parse_fine_duration(value);
            std::uint64_t secs = 0;
            std::int64_t ms = d ? d->count() / 1'000'000 : (to_uint(value, secs) ? static_cast<std::int64_t>(secs) * 1000 : -1);
            if (ms < 1 || ms > LoadParams::max_duration_ms) return "duration: 1ms..60s (like 5s or 500ms)";
            p.duration_ms = ms;
            have_duration = true;
        } else if (key == "connections") {
            if (!to_uint(value, n) || n < 1 || n > static_cast<std::uint64_t>(LoadParams::max_connections))
                return "connections: 1.." + std::to_string(LoadParams::max_connections);
            p.connections = static_cast<int>(n);
        } else if (key == "rate") {
            double r = 0;
            if (value.starts_with('-') || !to_double(value, r) || !(r >= 0) || r > 1e7) return "rate: requests/second, 0 (as fast as possible) .. 1e7";
            p.rate = r;
        } else if (key == "keepalive") {
            if (value != "0" && value != "1") return "keepalive: 1 or 0";
            p.keepalive = value == "1";
        } else {
            return "unknown parameter '" + std::string(key) + "' (requests, duration, connections, rate, keepalive)";
        }
    }
    if (p.requests != 0 && have_duration) return "give requests or duration, not both";
    if (p.requests != 0 && p.requests < static_cast<std::uint64_t>(p.connections)) p.connections = static_cast<int>(p.requests);
    out = p;
    return {};
}

std::string find_loadgen() {
    std::vector<char> path(4096);
    const ssize_t n = ::readlink("/proc/self/exe", path.data(), path.size() - 1);
    if (n > 0) {
        std::string self(path.data(), static_cast<std::size_t>(n));
        const std::size_t slash = self.rfind('/');
        if (slash != std::string::npos) {
            std::string beside = self.substr(0, slash + 1) + "loadgen";
            if (::access(beside.c_str(), X_OK) == 0) return beside;
        }
    }
    return "loadgen";
}

LoadRunner::LoadRunner(std::string loadgen, std::string target) : loadgen_(std::move(loadgen)), target_(std::move(target)) {}

LoadRunner::~LoadRunner() {
    if (pid_ > 0) {
        ::kill(pid_, SIGKILL);  // the server is going away: no report is wanted
        int status = 0;
        ::waitpid(pid_, &status, 0);
    }
}

std::string LoadRunner::start(const LoadParams& p) {
    if (pid_ > 0) return "a run is in progress: stop it first";
    std::vector<std::string> args = {loadgen_, target_, "-t", "1", "-c", std::to_string(p.connections), "--json-lines"};
    if (p.requests != 0) {
        args.insert(args.end(), {"-n", std::to_string(p.requests)});
    } else {
        args.insert(args.end(), {"-d", std::to_string(p.duration_ms) + "ms"});
    }
    if (p.rate > 0) args.insert(args.end(), {"-R", fmt(p.rate)});
    if (!p.keepalive) args.push_back("--close");

    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return std::string("pipe: ") + std::strerror(errno);
    Fd read_end(pipe_fds[0]), write_end(pipe_fds[1]);

    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDERR_FILENO);
    // The server blocks its signals in every thread (they are read from a signalfd): the
    // child must not inherit that, or SIGINT could not stop it.
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = -1;
    const int err = ::posix_spawnp(&pid, loadgen_.c_str(), &actions, &attr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (err != 0) return "cannot start " + loadgen_ + ": " + std::strerror(err);

    ::fcntl(read_end.get(), F_SETFL, O_NONBLOCK);
    pid_ = pid;
    ++run_;
    out_ = std::move(read_end);
    partial_.clear();
    state_ = "running";
    stop_asked_ = false;
    progress_json_ = result_json_ = "null";
    message_.clear();
    params_json_ = "{\"requests\":" + std::to_string(p.requests) + ",\"duration_ms\":" +
                   std::to_string(p.requests != 0 ? 0 : p.duration_ms) + ",\"connections\":" + std::to_string(p.connections) +
                   ",\"rate\":" + fmt(p.rate) + ",\"keepalive\":" + (p.keepalive ? "true" : "false") + ",\"target\":\"" +
                   json_escape(target_) + "\"}";
    return {};
}

bool LoadRunner::stop() {
    if (pid_ <= 0) return false;
    stop_asked_ = true;
    ::kill(pid_, SIGINT);
    return true;
}

void LoadRunner::on_readable() {
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(out_.get(), buf, sizeof buf);
        if (n > 0) {
            partial_.append(buf, static_cast<std::size_t>(n));
            std::size_t nl;
            while ((nl = partial_.find('\n')) != std::string::npos) {
                take_line(std::string_view(partial_).substr(0, nl));
                partial_.erase(0, nl + 1);
            }
            if (partial_.size() > 65536) partial_.clear();  // no line is that long: not ours
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        if (!partial_.empty()) take_line(partial_);
        reap();  // end of output: the child has exited (or closed its output)
        return;
    }
}

void LoadRunner::take_line(std::string_view line) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line.empty()) return;
    if (line.front() == '{') {
        if (line.find("\"type\":\"result\"") != std::string_view::npos) result_json_.assign(line);
        else if (line.find("\"type\":\"progress\"") != std::string_view::npos) progress_json_.assign(line);
        return;
    }
    message_.assign(line.substr(0, 300));  // loadgen's own words (a warning, an error)
}

void LoadRunner::reap() {
    out_.reset();
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    if (result_json_ != "null") {
        state_ = stop_asked_ ? "stopped" : "done";
    } else {
        state_ = "failed";
        if (message_.empty()) {
            message_ = WIFSIGNALED(status) ? "loadgen ended by signal " + std::to_string(WTERMSIG(status))
                                           : "loadgen exited " + std::to_string(WEXITSTATUS(status)) + " without a result";
        }
    }
}

std::string LoadRunner::status_json() const {
    return "{\"run\":" + std::to_string(run_) + ",\"state\":\"" + state_ + "\",\"params\":" + params_json_ + ",\"progress\":" + progress_json_ +
           ",\"result\":" + result_json_ + ",\"message\":\"" + json_escape(message_) + "\"}";
}

}  // namespace okserve::admin
