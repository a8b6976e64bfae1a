#include "tools/loadgen/report.hpp"

#include <cstdarg>
#include <algorithm>
#include <cstdio>
#include <string_view>

namespace okserve::loadgen {

namespace {

std::string printf_string(const char* format, ...) __attribute__((format(printf, 1, 2)));
std::string printf_string(const char* format, ...) {
    char buffer[512];
    va_list args;
    va_start(args, format);
    const int n = std::vsnprintf(buffer, sizeof buffer, format, args);
    va_end(args);
    return std::string(buffer, n < 0 ? 0 : std::min<std::size_t>(static_cast<std::size_t>(n), sizeof buffer - 1));
}

std::string format_bytes(double bytes) {
    const char* units[] = {"B", "KB", "MB", "GB", "TB"};
    int u = 0;
    while (bytes >= 1024 && u < 4) {
        bytes /= 1024;
        ++u;
    }
    return printf_string("%.2f%s", bytes, units[u]);
}

double micros(std::uint64_t ns) { return static_cast<double>(ns) / 1000.0; }

std::string json_escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        if (static_cast<unsigned char>(c) < 0x20) {
            out += printf_string("\\u%04x", c);
            continue;
        }
        out += c;
    }
    return out;
}

const char* mode_name(const Options& o) {
    if (o.close) return "close";
    return o.pipeline > 1 ? "pipeline" : "keep-alive";
}

double rps(const RunResult& r) { return r.seconds > 0 ? static_cast<double>(r.totals.responses) / r.seconds : 0.0; }

std::string url_of(const Options& o) { return "http://" + o.url.authority + o.url.path; }

std::string error_lines(const Totals& t) {
    std::string s = "  Errors:";
    for (std::size_t k = 0; k < error_kind_count; ++k) {
        s += printf_string(" %s %llu", error_kind_names[k], static_cast<unsigned long long>(t.errors[k]));
        if (k == static_cast<std::size_t>(ErrorKind::connect)) {
            s += printf_string(" (of %llu connection attempts)", static_cast<unsigned long long>(t.connect_attempts));
        }
        s += k + 1 < error_kind_count ? "," : "\n";
    }
    for (std::size_t k = 0; k < error_kind_count; ++k) {
        if (t.errors[k] > 0 && t.first_errors[k].text[0] != '\0') {
            s += printf_string("    first %s error: ", error_kind_names[k]) + escape_controls(t.first_errors[k].text) + "\n";
        }
    }
    return s;
}

}  // namespace

std::string escape_controls(std::string_view text) {
    std::string out;
    for (char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f || c == '\\') {
            out += c == '\\' ? std::string("\\\\") : printf_string("\\x%02x", u);
        } else {
            out += c;
        }
    }
    return out;
}

bool rate_fell_short(const Options& o, const RunResult& r) { return o.rate > 0 && rps(r) < 0.95 * o.rate; }

std::string rate_warning(const Options& o, const RunResult& r) {
    if (!rate_fell_short(o, r)) return {};
    return printf_string("achieved %.0f req/s, %.1f%% of the requested %.0f req/s: %llu requests sent late, "
                         "%llu never sent (the server or this client could not keep up)",
                         rps(r), 100.0 * rps(r) / o.rate, o.rate, static_cast<unsigned long long>(r.totals.late),
                         static_cast<unsigned long long>(r.totals.never_sent));
}

std::string format_banner(const Options& o) {
    std::string s;
    if (o.requests > 0) {
        s = printf_string("Running %llu requests", static_cast<unsigned long long>(o.requests));
        if (o.duration_set) s += printf_string(" (at most %.3gs)", static_cast<double>(o.duration_ns) / 1e9);
    } else {
        s = printf_string("Running %.3gs test", static_cast<double>(o.duration_ns) / 1e9);
    }
    s += " @ " + url_of(o) + "\n";
    s += printf_string("  %d threads and %d connections, %s", o.threads, o.connections, mode_name(o));
    if (o.pipeline > 1) s += printf_string(" %d deep", o.pipeline);
    s += o.rate > 0 ? printf_string(", open loop at %.0f req/s\n", o.rate) : std::string(", closed loop\n");
    return s;
}

std::string format_latency(std::uint64_t ns) {
    const double us = micros(ns);
    if (us < 1000) return printf_string("%.2fus", us);
    if (us < 1e6) return printf_string("%.2fms", us / 1e3);
    return printf_string("%.2fs", us / 1e6);
}

std::string format_summary(const Options& o, const RunResult& r) {
    const Totals& t = r.totals;
    const Histogram& h = t.latency;
    std::string s = "  Latency  mean " + format_latency(static_cast<std::uint64_t>(h.mean())) + "  p50 " +
         format_latency(h.percentile(50)) + "  p99 " + format_latency(h.percentile(99)) + "  max " +
         format_latency(h.max()) + "\n";
    if (o.latency) {
        s += "  Latency Distribution\n";
        for (double p : {50.0, 75.0, 90.0, 99.0, 99.9, 99.99}) {
            s += printf_string("  %6g%%  %s\n", p, format_latency(h.percentile(p)).c_str());
        }
    }
    s += printf_string("  %llu requests in %.2fs, %s read\n", static_cast<unsigned long long>(t.responses), r.seconds,
                       format_bytes(static_cast<double>(t.bytes_read)).c_str());
    if (t.error_total() > 0) {
        s += error_lines(t);
    }
    if (o.rate > 0) {
        s += printf_string("  Rate: requested %.0f req/s, achieved %.2f req/s (%.1f%%); %llu sent late (1ms or more), "
                           "%llu never sent\n",
                           o.rate, rps(r), 100.0 * rps(r) / o.rate, static_cast<unsigned long long>(t.late),
                           static_cast<unsigned long long>(t.never_sent));
        if (rate_fell_short(o, r)) s += "  Warning: the achieved rate is below 95% of the requested rate\n";
    }
    s += printf_string("Requests/sec: %10.2f\n", rps(r));
    s += "Transfer/sec: " + format_bytes(r.seconds > 0 ? static_cast<double>(t.bytes_read) / r.seconds : 0) + "\n";
    return s;
}

std::string format_json(const Options& o, const RunResult& r) { return "{" + format_json_fields(o, r) + "}\n"; }

std::string format_json_result(const Options& o, const RunResult& r) {
    return "{\"type\":\"result\"," + format_json_fields(o, r) + "}\n";
}

std::string format_json_progress(const ProgressSample& p) {
    return printf_string("{\"type\":\"progress\",\"elapsed_s\":%.3f,\"requests\":%llu,\"errors\":%llu,\"rps\":%.1f}\n",
                         p.elapsed_s, static_cast<unsigned long long>(p.requests),
                         static_cast<unsigned long long>(p.errors), p.rps);
}

std::string format_json_fields(const Options& o, const RunResult& r) {
    const Totals& t = r.totals;
    const Histogram& h = t.latency;
    std::string s;
    s += "\"url\":\"" + json_escape("http://" + o.url.authority + o.url.path) + "\",";
    s += printf_string("\"mode\":\"%s\",\"threads\":%d,\"connections\":%d,\"pipeline\":%d,\"rate\":%.3f,", mode_name(o),
                       o.threads, o.connections, o.pipeline, o.rate);
    s += printf_string("\"requests\":%llu,\"seconds\":%.6f,\"rps\":%.2f,\"bytes\":%llu,",
                       static_cast<unsigned long long>(t.responses), r.seconds, rps(r),
                       static_cast<unsigned long long>(t.bytes_read));
    s += "\"errors\":{";
    for (std::size_t k = 0; k < error_kind_count; ++k) {
        s += printf_string("\"%s\":%llu,", error_kind_names[k], static_cast<unsigned long long>(t.errors[k]));
    }
    s += printf_string("\"total\":%llu},", static_cast<unsigned long long>(t.error_total()));
    s += "\"error_messages\":{";
    bool first = true;
    for (std::size_t k = 0; k < error_kind_count; ++k) {
        if (t.errors[k] == 0 || t.first_errors[k].text[0] == '\0') continue;
        s += std::string(first ? "" : ",") + "\"" + error_kind_names[k] + "\":\"" +
             json_escape(escape_controls(t.first_errors[k].text)) + "\"";
        first = false;
    }
    s += "},";
    s += printf_string("\"connect_attempts\":%llu,\"sent\":%llu,\"achieved_rate\":%.2f,\"late\":%llu,"
                       "\"never_sent\":%llu,\"rate_met\":%s,",
                       static_cast<unsigned long long>(t.connect_attempts), static_cast<unsigned long long>(t.sent),
                       rps(r), static_cast<unsigned long long>(t.late), static_cast<unsigned long long>(t.never_sent),
                       rate_fell_short(o, r) ? "false" : "true");
    s += "\"status\":{";
    for (std::size_t c = 1; c <= 5; ++c) {
        s += printf_string("\"%zuxx\":%llu%s", c, static_cast<unsigned long long>(t.status_classes[c]), c < 5 ? "," : "},");
    }
    s += printf_string("\"latency_us\":{\"min\":%.1f,\"mean\":%.1f,\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,"
                       "\"p999\":%.1f,\"max\":%.1f}",
                       micros(h.min()), h.mean() / 1000.0, micros(h.percentile(50)), micros(h.percentile(90)),
                       micros(h.percentile(99)), micros(h.percentile(99.9)), micros(h.max()));
    return s;
}

std::string format_progress(std::uint64_t responses, double per_second, std::uint64_t errors, double elapsed) {
    return printf_string("loadgen: %llu requests, %.0f req/s, %llu errors, %.1fs", static_cast<unsigned long long>(responses),
                         per_second, static_cast<unsigned long long>(errors), elapsed);
}

}  // namespace okserve::loadgen
