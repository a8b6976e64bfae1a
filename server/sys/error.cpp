#include "server/sys/error.hpp"

#include <cstring>

namespace okserve {

std::string_view errno_text(int err) noexcept {
    const char* text = ::strerrordesc_np(err);
    return text ? text : "Unknown error";
}

std::string_view errno_name(int err) noexcept {
    const char* name = ::strerrorname_np(err);
    return name ? name : "E?";
}

static std::string describe(std::string_view what_doing, std::string_view syscall, int err) {
    std::string s(what_doing);
    s += ": ";
    s += syscall;
    s += ": ";
    s += errno_text(err);
    return s;
}

SysError::SysError(std::string_view what_doing, std::string_view syscall, int err)
    : std::runtime_error(describe(what_doing, syscall, err)), err_(err) {}

}  // namespace okserve
