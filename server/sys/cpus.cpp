#include "server/sys/cpus.hpp"

#include <charconv>
#include <fstream>
#include <iterator>
#include <string>

#include <sched.h>

namespace okserve {

namespace {

std::string read_text(const std::string& path) {
    std::ifstream in(path);
    return in ? std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()) : std::string();
}

bool parse_ll(std::string_view s, long long& out) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && end == s.data() + s.size();
}

// The tightest quota from the process's cgroup up to the root (a parent may limit too).
std::optional<std::size_t> cgroup_limit() {
    std::optional<std::size_t> best;
    const auto tighten = [&best](std::optional<std::size_t> n) {
        if (n && (!best || *n < *best)) best = n;
    };
    const std::string self = read_text("/proc/self/cgroup");
    if (const auto path = cgroup2_path(self)) {
        std::string dir(*path);
        for (;;) {
            tighten(cpus_from_cpu_max(read_text("/sys/fs/cgroup" + dir + "/cpu.max")));
            if (dir.empty() || dir == "/") break;
            dir = dir.substr(0, dir.rfind('/'));
        }
    }
    long long quota = 0, period = 0;
    if (parse_ll(read_text("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), quota) &&
        parse_ll(read_text("/sys/fs/cgroup/cpu/cpu.cfs_period_us"), period)) {
        tighten(cpus_from_cfs(quota, period));
    }
    return best;
}

}  // namespace

std::optional<std::size_t> cpus_from_cfs(long long quota_us, long long period_us) {
    if (quota_us <= 0 || period_us <= 0) return std::nullopt;
    return static_cast<std::size_t>((quota_us + period_us - 1) / period_us);
}

std::optional<std::size_t> cpus_from_cpu_max(std::string_view text) {
    const std::size_t space = text.find(' ');
    if (space == std::string_view::npos) return std::nullopt;
    long long quota = 0, period = 0;
    if (text.substr(0, space) == "max" || !parse_ll(text.substr(0, space), quota)) return std::nullopt;
    if (!parse_ll(text.substr(space + 1), period)) return std::nullopt;
    return cpus_from_cfs(quota, period);
}

std::optional<std::string_view> cgroup2_path(std::string_view text) {
    std::size_t at = 0;
    while (at < text.size()) {
        std::size_t end = text.find('\n', at);
        if (end == std::string_view::npos) end = text.size();
        const std::string_view line = text.substr(at, end - at);
        if (line.rfind("0::", 0) == 0) return line.substr(3);
        at = end + 1;
    }
    return std::nullopt;
}

std::size_t usable_cpus() {
    std::size_t n = 1;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof set, &set) == 0) n = static_cast<std::size_t>(CPU_COUNT(&set));
    if (const auto limit = cgroup_limit(); limit && *limit < n) n = *limit;
    return n == 0 ? 1 : n;
}

}  // namespace okserve
