#include "tools/loadgen/hlog.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <fstream>
#include <stdexcept>
#include <string_view>

#include "tools/loadgen/report.hpp"

namespace okserve::loadgen {

namespace {

constexpr std::string_view version_line = "#[Histogram log format version 1.2]";
constexpr std::string_view legend =
    "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"";
constexpr std::string_view summary_mark = "#[loadgen: ";
constexpr std::string_view error_mark = "#[loadgen-error: ";
// Interval_Max is written in seconds: microseconds / this, as HdrHistogram's writer does.
constexpr double max_value_unit_ratio = 1e6;

std::string errno_text(int error) {
    const char* desc = strerrordesc_np(error);
    return desc ? desc : "unknown error";
}

std::optional<double> to_double(std::string_view s) {
    double v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
    return v;
}

std::optional<std::uint64_t> to_u64(std::string_view s) {
    std::uint64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
    return v;
}

}  // namespace

HdrHistogram make_log_histogram() { return HdrHistogram(hlog_lowest_us, hlog_highest_us, hlog_digits); }

IntervalLog::IntervalLog(const std::string& path, double start_epoch, std::int64_t start_ns, std::int64_t interval_ns,
                         int workers)
    : path_(path), start_ns_(start_ns), interval_ns_(interval_ns), passed_(static_cast<std::size_t>(workers), 0) {
    file_ = std::fopen(path.c_str(), "w");
    if (file_ == nullptr) {
        throw std::runtime_error("open " + path + ": " + errno_text(errno));
    }
    const auto whole = static_cast<time_t>(start_epoch);
    tm utc{};
    gmtime_r(&whole, &utc);
    char date[64];
    std::strftime(date, sizeof date, "%a %b %d %H:%M:%S UTC %Y", &utc);
    std::fprintf(file_, "%s\n#[Written by okserve loadgen: latency in microseconds from each request's intended send time]\n",
                 version_line.data());
    std::fprintf(file_, "#[StartTime: %.3f (seconds since epoch), %s]\n", start_epoch, date);
    std::fprintf(file_, "#[BaseTime: %.3f (seconds since epoch)]\n%s\n", start_epoch, legend.data());
    std::fflush(file_);
}

IntervalLog::~IntervalLog() {
    if (file_ != nullptr) std::fclose(file_);
}

void IntervalLog::deliver(std::int64_t interval, const HdrHistogram& h) {
    std::lock_guard lock(mutex_);
    auto it = pending_.find(interval);
    if (it == pending_.end()) {
        it = pending_.emplace(interval, make_log_histogram()).first;
    }
    it->second.add(h);
}

void IntervalLog::advance(int worker, std::int64_t interval) {
    std::lock_guard lock(mutex_);
    passed_[static_cast<std::size_t>(worker)] = interval;
}

void IntervalLog::write_ready() {
    std::unique_lock lock(mutex_);
    const std::int64_t ready = *std::min_element(passed_.begin(), passed_.end());
    const HdrHistogram empty = make_log_histogram();
    while (next_write_ < ready) {
        const auto it = pending_.find(next_write_);
        if (it == pending_.end()) {
            write_interval(next_write_, empty, INT64_MAX);
        } else {
            const HdrHistogram h = std::move(it->second);
            pending_.erase(it);
            lock.unlock();
            write_interval(next_write_, h, INT64_MAX);
            lock.lock();
        }
        ++next_write_;
    }
    std::fflush(file_);
}

void IntervalLog::write_interval(std::int64_t interval, const HdrHistogram& h, std::int64_t end_ns) {
    const std::int64_t begin = interval * interval_ns_;
    const std::int64_t length = std::min(interval_ns_, std::max<std::int64_t>(0, end_ns - start_ns_ - begin));
    const std::string payload = base64_encode(encode_compressed(h));
    std::fprintf(file_, "%.3f,%.3f,%.3f,%s\n", static_cast<double>(begin) / 1e9, static_cast<double>(length) / 1e9,
                 static_cast<double>(h.max()) / max_value_unit_ratio, payload.c_str());
}

void IntervalLog::finish(std::int64_t end_ns, const Options& o, const RunResult& r) {
    for (int w = 0; w < static_cast<int>(passed_.size()); ++w) advance(w, std::max<std::int64_t>(0, interval_of(end_ns - 1)));
    write_ready();
    {
        std::lock_guard lock(mutex_);
        HdrHistogram last = make_log_histogram();
        for (auto& [interval, h] : pending_) last.add(h);  // only the interval holding the end
        write_interval(next_write_, last, end_ns);
        pending_.clear();
    }
    const Totals& t = r.totals;
    for (std::size_t k = 0; k < error_kind_count; ++k) {
        if (t.errors[k] > 0 && t.first_errors[k].text[0] != '\0') {
            std::fprintf(file_, "%s%s %s]\n", error_mark.data(), error_kind_names[k],
                         escape_controls(t.first_errors[k].text).c_str());
        }
    }
    std::string line = std::string(summary_mark) + "url=http://" + o.url.authority + o.url.path;
    char buffer[512];
    std::snprintf(buffer, sizeof buffer,
                  " threads=%d connections=%d pipeline=%d close=%d rate=%.3f start=%.6f seconds=%.6f requests=%llu"
                  " bytes=%llu connect_attempts=%llu sent=%llu late=%llu never_sent=%llu",
                  o.threads, o.connections, o.pipeline, o.close ? 1 : 0, o.rate, r.start_epoch, r.seconds,
                  static_cast<unsigned long long>(t.responses), static_cast<unsigned long long>(t.bytes_read),
                  static_cast<unsigned long long>(t.connect_attempts), static_cast<unsigned long long>(t.sent),
                  static_cast<unsigned long long>(t.late), static_cast<unsigned long long>(t.never_sent));
    line += buffer;
    for (std::size_t k = 0; k < error_kind_count; ++k) {
        line += " " + std::string(error_kind_names[k]) + "=" + std::to_string(t.errors[k]);
    }
    for (std::size_t c = 1; c <= 5; ++c) {
        line += " " + std::to_string(c) + "xx=" + std::to_string(t.status_classes[c]);
    }
    line += "]\n";
    std::fputs(line.c_str(), file_);
    const bool failed = std::fflush(file_) != 0 || std::ferror(file_);
    const int error = errno;
    std::fclose(file_);
    file_ = nullptr;
    if (failed) throw std::runtime_error("write " + path_ + ": " + errno_text(error));
}

namespace {

// Applies one "key=value" of the summary line; false for an unknown key or a bad value.
bool apply_summary_field(LogFile& log, std::string_view key, std::string_view value) {
    Totals& t = log.result.totals;
    if (key == "url") {
        std::string error;
        const auto url = parse_url(value, &error);
        if (!url) return false;
        log.options.url = *url;
        return true;
    }
    if (key == "rate" || key == "start" || key == "seconds") {
        const auto v = to_double(value);
        if (!v) return false;
        (key == "rate" ? log.options.rate : key == "start" ? log.result.start_epoch : log.result.seconds) = *v;
        return true;
    }
    const auto v = to_u64(value);
    if (!v) return false;
    if (key == "threads") log.options.threads = static_cast<int>(*v);
    else if (key == "connections") log.options.connections = static_cast<int>(*v);
    else if (key == "pipeline") log.options.pipeline = static_cast<int>(*v);
    else if (key == "close") log.options.close = *v != 0;
    else if (key == "requests") t.responses = *v;
    else if (key == "bytes") t.bytes_read = *v;
    else if (key == "connect_attempts") t.connect_attempts = *v;
    else if (key == "sent") t.sent = *v;
    else if (key == "late") t.late = *v;
    else if (key == "never_sent") t.never_sent = *v;
    else if (key.size() == 3 && key.substr(1) == "xx" && key[0] >= '1' && key[0] <= '5')
        t.status_classes[static_cast<std::size_t>(key[0] - '0')] = *v;
    else {
        for (std::size_t k = 0; k < error_kind_count; ++k) {
            if (key == error_kind_names[k]) {
                t.errors[k] = *v;
                return true;
            }
        }
        return false;
    }
    return true;
}

}  // namespace

LogFile read_log(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    LogFile log;
    log.path = path;
    if (!in) throw InputError(path + ": " + errno_text(errno));
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) throw InputError(path + ": read: " + errno_text(errno));
    std::size_t line_no = 0;
    bool summary = false;
    bool have_start = false;
    std::uint64_t counted = 0;
    auto fail = [&](const std::string& why) { return InputError(path + ":" + std::to_string(line_no) + ": " + why); };
    std::string_view rest = text;
    while (!rest.empty()) {
        ++line_no;
        const std::size_t nl = rest.find('\n');
        if (nl == std::string_view::npos) throw fail("truncated: the last line has no end");
        const std::string_view line = rest.substr(0, nl);
        rest.remove_prefix(nl + 1);
        if (line_no == 1) {
            if (!line.starts_with("#[Histogram log format version 1.")) throw fail("not an HdrHistogram log (no format version line)");
            continue;
        }
        if (summary) throw fail("lines after loadgen's summary line");
        if (line.starts_with(summary_mark)) {
            if (!line.ends_with("]")) throw fail("truncated summary line");
            std::string_view fields = line.substr(summary_mark.size(), line.size() - summary_mark.size() - 1);
            while (!fields.empty()) {
                const std::size_t space = fields.find(' ');
                const std::string_view field = fields.substr(0, space);
                fields.remove_prefix(space == std::string_view::npos ? fields.size() : space + 1);
                const std::size_t eq = field.find('=');
                if (eq == std::string_view::npos || !apply_summary_field(log, field.substr(0, eq), field.substr(eq + 1))) {
                    throw fail("bad field in loadgen's summary line: '" + escape_controls(field) + "'");
                }
            }
            summary = true;
            continue;
        }
        if (line.starts_with(error_mark) && line.ends_with("]")) {
            const std::string_view body = line.substr(error_mark.size(), line.size() - error_mark.size() - 1);
            const std::size_t space = body.find(' ');
            for (std::size_t k = 0; k < error_kind_count && space != std::string_view::npos; ++k) {
                if (body.substr(0, space) == error_kind_names[k]) {
                    FirstError& first = log.result.totals.first_errors[k];
                    first.at_ns = 0;
                    const std::string_view msg = body.substr(space + 1);
                    std::snprintf(first.text, sizeof first.text, "%.*s", static_cast<int>(msg.size()), msg.data());
                }
            }
            continue;
        }
        if (line.starts_with("#[StartTime: ")) {
            const std::string_view v = line.substr(13, line.find(' ', 13) - 13);
            const auto start = to_double(v);
            if (!start) throw fail("bad StartTime");
            log.start_epoch = *start;
            have_start = true;
            continue;
        }
        if (line.starts_with("#") || line == legend) continue;
        // start,length,max,payload (HdrHistogram allows a "Tag=name," prefix)
        std::string_view data = line.starts_with("Tag=") ? line.substr(std::min(line.size(), line.find(',') + 1)) : line;
        std::string_view parts[4];
        for (int i = 0; i < 4; ++i) {
            const std::size_t comma = i < 3 ? data.find(',') : data.size();
            if (comma == std::string_view::npos) throw fail("corrupt interval: want start,length,max,histogram");
            parts[i] = data.substr(0, comma);
            data.remove_prefix(std::min(data.size(), comma + 1));
        }
        if (!to_double(parts[0]) || !to_double(parts[1]) || !to_double(parts[2])) {
            throw fail("corrupt interval: bad start, length or max");
        }
        try {
            HdrHistogram h = decode(base64_decode(parts[3]));
            counted += h.total();
            log.merged.add(h);
            log.intervals.push_back(std::move(h));
        } catch (const DecodeError& e) {
            throw fail(std::string("corrupt interval: ") + e.what());
        }
    }
    if (line_no == 0) throw InputError(path + ":1: not an HdrHistogram log (empty)");
    if (!have_start) throw fail("not a loadgen log: no StartTime");
    if (!summary) throw fail("truncated: no loadgen summary line at the end (the run did not finish writing it)");
    if (counted != log.result.totals.responses) {
        throw fail("the intervals hold " + std::to_string(counted) + " latencies but the summary says " +
                   std::to_string(log.result.totals.responses) + " requests");
    }
    return log;
}

}  // namespace okserve::loadgen
