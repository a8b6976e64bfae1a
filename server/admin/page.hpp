// okserve live page: one static HTML file (script and style inline, nothing fetched from
// outside), built into the binary from server/admin/page.html.
#pragma once

#include <string_view>

namespace okserve::admin {

std::string_view live_page() noexcept;

}  // namespace okserve::admin
