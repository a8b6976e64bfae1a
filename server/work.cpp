#include "server/work.hpp"

#include <charconv>
#include <cmath>
#include <ctime>
#include <random>
#include <thread>

namespace okserve {

namespace {

std::int64_t monotonic_ns() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

std::chrono::nanoseconds draw(const WorkSpec& spec) noexcept {
    if (!spec.exponential) return spec.mean;
    thread_local std::mt19937_64 rng{std::random_device{}()};
    std::exponential_distribution<double> exp(1.0);
    const double ns = exp(rng) * static_cast<double>(spec.mean.count());
    return std::chrono::nanoseconds(static_cast<std::int64_t>(std::min(ns, 60e9)));  // a minute at most
}

}  // namespace

std::optional<std::chrono::nanoseconds> parse_fine_duration(std::string_view text) {
    double value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end == text.data()) return std::nullopt;
    const std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
    double scale = 0;
    if (unit == "ns") scale = 1;
    else if (unit == "us" || unit == "µs") scale = 1e3;
    else if (unit == "ms") scale = 1e6;
    else if (unit == "s") scale = 1e9;
    else return std::nullopt;
    const double ns = value * scale;
    if (!(ns >= 1) || ns > 3600e9) return std::nullopt;
    return std::chrono::nanoseconds(static_cast<std::int64_t>(std::llround(ns)));
}

std::optional<WorkSpec> parse_work(std::string_view text, std::string* error) {
    WorkSpec spec;
    const auto fail = [&](const std::string& why) -> std::optional<WorkSpec> {
        if (error) *error = why;
        return std::nullopt;
    };
    const std::size_t colon = text.find(':');
    if (colon == std::string_view::npos) return fail("'" + std::string(text) + "' is not KIND:DURATION (sleep:50ms, spin:exp:100us)");
    const std::string_view kind = text.substr(0, colon);
    std::string_view rest = text.substr(colon + 1);
    if (kind == "sleep") spec.kind = WorkSpec::Kind::sleep;
    else if (kind == "spin") spec.kind = WorkSpec::Kind::spin;
    else return fail("'" + std::string(kind) + "' is not sleep or spin");
    if (rest.starts_with("exp:")) {
        spec.exponential = true;
        rest.remove_prefix(4);
    }
    const auto mean = parse_fine_duration(rest);
    if (!mean) return fail("'" + std::string(rest) + "' is not a duration like 50ms, 200us, 1s (1 ns to 1 h)");
    spec.mean = *mean;
    return spec;
}

std::string WorkSpec::describe() const {
    if (!active()) return "none";
    std::string s = kind == Kind::sleep ? "sleep:" : "spin:";
    if (exponential) s += "exp:";
    const auto ns = mean.count();
    if (ns % 1'000'000'000 == 0) s += std::to_string(ns / 1'000'000'000) + "s";
    else if (ns % 1'000'000 == 0) s += std::to_string(ns / 1'000'000) + "ms";
    else if (ns % 1'000 == 0) s += std::to_string(ns / 1'000) + "us";
    else s += std::to_string(ns) + "ns";
    return s;
}

void perform_work(const WorkSpec& spec, std::uint64_t requests) noexcept {
    if (!spec.active()) return;
    for (std::uint64_t i = 0; i < requests; ++i) {
        const std::chrono::nanoseconds d = draw(spec);
        if (spec.kind == WorkSpec::Kind::sleep) {
            std::this_thread::sleep_for(d);
        } else {
            const std::int64_t until = monotonic_ns() + d.count();
            while (monotonic_ns() < until) {
            }
        }
    }
}

}  // namespace okserve
