#include "server/admin/metrics.hpp"

#include <cinttypes>
#include <cstdio>

namespace okserve::admin {

namespace {

std::string number(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    return buf;
}

std::string fixed(double v, int digits) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", digits, v);
    return buf;
}

void metric(std::string& out, std::string_view name, std::string_view type, std::string_view help,
            std::uint64_t value) {
    out.append("# HELP okserve_").append(name).append(" ").append(help).append("\n");
    out.append("# TYPE okserve_").append(name).append(" ").append(type).append("\n");
    out.append("okserve_").append(name).append(" ").append(std::to_string(value)).append("\n");
}

}  // namespace

Interval between(const Reading& before, const Reading& after) {
    Interval i;
    i.delta = after.figures.since(before.figures);
    i.seconds = static_cast<double>(after.at_ns - before.at_ns) / 1e9;
    return i;
}

std::string json_escape(std::string_view s) {
    std::string out;
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += ch;
        } else if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
        } else {
            out += ch;
        }
    }
    return out;
}

std::string prometheus(const Reading& r, const Extras& x) {
    const Figures& f = r.figures;
    const Gauges& g = r.gauges;
    std::string out;
    out.reserve(4096);
    metric(out, "connections_accepted_total", "counter", "Connections accepted.", f.get(Tally::accepted));
    metric(out, "connections_active", "gauge", "Connections accepted and not yet closed.", f.open());
    metric(out, "requests_total", "counter", "Answers sent (429s included).", f.get(Tally::requests));
    metric(out, "answered_total", "counter", "Connections that ended after at least one answer.", f.get(Tally::answered));
    metric(out, "rejected_total", "counter", "Connections answered 503 for lack of room (--overflow reject).",
           f.get(Tally::rejected));
    metric(out, "rate_limited_total", "counter", "Requests answered 429 (--rate-limit).", f.get(Tally::rate_limited));
    metric(out, "timed_out_total", "counter", "Connections ended by a timeout (408, a blocked write, idle before a request).",
           f.get(Tally::timed_out));
    metric(out, "closed_by_client_total", "counter", "Connections the client closed before any answer.",
           f.get(Tally::closed_by_client));
    metric(out, "errors_total", "counter", "Connections ended by a malformed request or a socket error.",
           f.get(Tally::errors));
    metric(out, "accept_errors_total", "counter", "accept(2) failures (out of descriptors, memory).",
           f.get(Tally::accept_errors));
    metric(out, "queue_full_total", "counter", "Hand-offs that found no room.", f.get(Tally::queue_full));
    metric(out, "evicted_total", "counter", "Idle keep-alive connections closed to make room.", f.get(Tally::evicted));
    metric(out, "queue_depth", "gauge", "Connection turns the executor holds, waiting or running (pool, queue).",
           g.queue_depth);
    metric(out, "queue_capacity", "gauge", "What the executor can hold: workers + queue (pool), queue slots (queue).",
           g.queue_capacity);
    metric(out, "workers", "gauge", "Threads that serve clients (pool workers, event loops, connection threads).",
           g.workers);
    metric(out, "workers_busy", "gauge", "Of those, the ones doing something now.", g.workers_busy);
    metric(out, "ready", "gauge", "1 while accepting, 0 once a drain began.", x.ready ? 1 : 0);
    metric(out, "access_log_lines_total", "counter", "Access log lines written.", x.access_log_written);
    metric(out, "access_log_dropped_total", "counter", "Access log lines lost (slow or failed disk).",
           x.access_log_dropped);

    out += "# HELP okserve_request_duration_seconds From a request's first byte read to its answer's last byte written.\n";
    out += "# TYPE okserve_request_duration_seconds histogram\n";
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < LatencyHistogram::bounds_ns.size(); ++i) {
        cumulative += f.buckets[i];
        out += "okserve_request_duration_seconds_bucket{le=\"" +
               number(static_cast<double>(LatencyHistogram::bounds_ns[i]) / 1e9) + "\"} " + std::to_string(cumulative) + "\n";
    }
    cumulative += f.buckets.back();
    out += "okserve_request_duration_seconds_bucket{le=\"+Inf\"} " + std::to_string(cumulative) + "\n";
    out += "okserve_request_duration_seconds_sum " + fixed(static_cast<double>(f.latency_sum_ns) / 1e9, 9) + "\n";
    out += "okserve_request_duration_seconds_count " + std::to_string(f.latency_count) + "\n";
    return out;
}

std::string snapshot_json(const Config& cfg, const Reading& r, const Interval& last, const Extras& x,
                          std::string_view load_json) {
    const Figures& f = r.figures;
    const Gauges& g = r.gauges;
    std::string s = "{";
    s += "\"time\":" + fixed(r.unix_time, 3) + ",\"uptime_s\":" + fixed(x.uptime_s, 3) +
         ",\"interval_s\":" + fixed(last.seconds, 3) + ",\"mode\":\"" + to_string(cfg.mode) + "\",\"ready\":" +
         (x.ready ? "true" : "false") + ",";
    s += "\"config\":{";
    s += "\"workers\":" + std::to_string(g.workers) + ",\"queue\":" + std::to_string(cfg.queue) +
         ",\"overflow\":\"" + (cfg.overflow == Overflow::block ? "block" : "reject") + "\"" +
         ",\"max_connections\":" + std::to_string(cfg.max_connections) + ",\"close\":" + (cfg.close ? "true" : "false") +
         ",\"work\":\"" + json_escape(cfg.work.describe()) + "\",\"rate_limit\":" + number(cfg.rate_limit) +
         ",\"rate_burst\":" + std::to_string(cfg.rate_burst) + ",\"status\":" + std::to_string(cfg.response.status) +
         ",\"keepalive_timeout_ms\":" + std::to_string(cfg.keepalive_timeout.count()) +
         ",\"admin_interval_ms\":" + std::to_string(cfg.admin_interval.count()) + "},";
    s += "\"totals\":{";
    for (int i = 0; i < Tally::field_count; ++i) {
        if (i) s += ',';
        s += "\"" + std::string(Tally::names[i]) + "\":" + std::to_string(f.get(static_cast<Tally::Field>(i)));
    }
    s += "},\"gauges\":{\"connections_active\":" + std::to_string(f.open()) +
         ",\"queue_depth\":" + std::to_string(g.queue_depth) + ",\"queue_capacity\":" + std::to_string(g.queue_capacity) +
         ",\"workers\":" + std::to_string(g.workers) + ",\"workers_busy\":" + std::to_string(g.workers_busy) + "},";
    s += "\"rates\":{";
    const Tally::Field rated[] = {Tally::requests, Tally::accepted, Tally::rejected, Tally::rate_limited,
                                  Tally::timed_out, Tally::errors, Tally::closed_by_client};
    for (std::size_t i = 0; i < std::size(rated); ++i) {
        if (i) s += ',';
        s += "\"" + std::string(Tally::names[rated[i]]) + "\":" + fixed(last.rate(rated[i]), 2);
    }
    const Figures& d = last.delta;
    const auto us = [&](double p) { return fixed(static_cast<double>(d.percentile_ns(p)) / 1e3, 1); };
    const double mean = d.latency_count ? static_cast<double>(d.latency_sum_ns) / static_cast<double>(d.latency_count) / 1e3 : 0;
    s += "},\"latency_us\":{\"count\":" + std::to_string(d.latency_count) + ",\"mean\":" + fixed(mean, 1) +
         ",\"p50\":" + us(50) + ",\"p90\":" + us(90) + ",\"p99\":" + us(99) + ",\"p99.9\":" + us(99.9) + "},";
    s += "\"access_log\":{\"written\":" + std::to_string(x.access_log_written) +
         ",\"dropped\":" + std::to_string(x.access_log_dropped) + "},";
    s += "\"load\":";
    s += load_json.empty() ? std::string_view("null") : load_json;
    s += "}";
    return s;
}

}  // namespace okserve::admin
