// The library face (server/include/okserve/okserve.hpp) over okserve::Instance: options
// parsed by the command-line parser, errors turned into okserve::Error.
#include "server/include/okserve/okserve.hpp"

#include <mutex>

#include "server/config.hpp"
#include "server/instance.hpp"
#include "server/sys/error.hpp"

namespace okserve {

struct Server::Impl {
    Config config;
    mutable std::mutex mutex;  // guards instance against a caller's threads
    std::unique_ptr<Instance> instance;
    Figures before;  // what earlier runs counted: counters() go on across restarts
};

namespace {

Config parse(const std::vector<std::string>& options) {
    std::vector<const char*> argv{"okserve"};
    for (const std::string& o : options) argv.push_back(o.c_str());
    try {
        // LISTEN_FDS stays the host process's: an embedded server takes a socket by --fd only.
        CommandLine cl = parse_command_line(static_cast<int>(argv.size()), argv.data(), false);
        if (cl.action != Command::run) throw Error(Error::Kind::usage, "okserve: --help, --version and probe are not server options");
        return cl.config;
    } catch (const UsageError& e) {
        throw Error(Error::Kind::usage, e.what());
    }
}

}  // namespace

Server::Server(std::vector<std::string> options) : impl_(std::make_unique<Impl>()) { impl_->config = parse(options); }

Server::~Server() { stop_now(); }

void Server::start() {
    std::lock_guard lock(impl_->mutex);
    if (impl_->instance) return;
    try {
        impl_->instance = std::make_unique<Instance>(impl_->config);
        impl_->instance->start();
    } catch (const UsageError& e) {
        impl_->instance.reset();
        throw Error(Error::Kind::usage, e.what());
    } catch (const std::invalid_argument& e) {
        impl_->instance.reset();
        throw Error(Error::Kind::usage, std::string("okserve: ") + e.what());
    } catch (const std::exception& e) {  // SysError, std::system_error, std::bad_alloc
        impl_->instance.reset();
        throw Error(Error::Kind::system, std::string("okserve: ") + e.what());
    }
}

bool Server::running() const noexcept {
    std::lock_guard lock(impl_->mutex);
    return impl_->instance != nullptr;
}

std::uint16_t Server::port() const noexcept {
    std::lock_guard lock(impl_->mutex);
    return impl_->instance ? impl_->instance->port() : 0;
}

std::string Server::address() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->instance ? impl_->instance->address() : std::string();
}

std::string Server::admin_address() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->instance ? impl_->instance->admin_address() : std::string();
}

Counters Server::counters() const {
    std::lock_guard lock(impl_->mutex);
    Figures f = impl_->before;
    if (impl_->instance) {
        const Figures now = impl_->instance->stats().figures();
        for (std::size_t i = 0; i < f.v.size(); ++i) f.v[i] += now.v[i];
    }
    Counters c;
    c.accepted = f.get(Tally::accepted);
    c.answered = f.get(Tally::answered);
    c.rejected = f.get(Tally::rejected);
    c.timed_out = f.get(Tally::timed_out);
    c.closed_by_client = f.get(Tally::closed_by_client);
    c.errors = f.get(Tally::errors);
    c.open = f.open();
    c.requests = f.get(Tally::requests);
    c.rate_limited = f.get(Tally::rate_limited);
    return c;
}

bool Server::stop(std::chrono::milliseconds timeout) {
    std::lock_guard lock(impl_->mutex);
    if (!impl_->instance) return true;
    const bool drained = impl_->instance->stop(timeout);
    const Figures last = impl_->instance->stats().figures();
    for (std::size_t i = 0; i < last.v.size(); ++i) impl_->before.v[i] += last.v[i];
    impl_->instance.reset();
    return drained;
}

void Server::stop_now() {
    std::lock_guard lock(impl_->mutex);
    if (!impl_->instance) return;
    impl_->instance->stop_now();
    const Figures last = impl_->instance->stats().figures();
    for (std::size_t i = 0; i < last.v.size(); ++i) impl_->before.v[i] += last.v[i];
    impl_->instance.reset();
}

const char* version() noexcept { return version_text; }

}  // namespace okserve
