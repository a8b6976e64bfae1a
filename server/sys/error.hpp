// okserve start-up errors: an operation, its target and errno, carried up to main().
// Hot paths never throw; they return outcomes (see connection.hpp).
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace okserve {

// Thread-safe text for an errno value ("Address already in use").
std::string_view errno_text(int err) noexcept;
// Thread-safe symbolic name for an errno value ("EADDRINUSE").
std::string_view errno_name(int err) noexcept;

// "listen 127.0.0.1:8080: bind: Address already in use"
class SysError : public std::runtime_error {
public:
    SysError(std::string_view what_doing, std::string_view syscall, int err);
    int code() const noexcept { return err_; }

private:
    int err_;
};

// A bad flag or value: main() prints the message and exits 2.
class UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

}  // namespace okserve
