// The live page's bytes, taken into the object file as they are by the assembler's
// .incbin (the Makefile makes this file depend on page.html).
#include "server/admin/page.hpp"

asm(R"(
    .section .rodata
    .global okserve_admin_page_begin
    .global okserve_admin_page_end
okserve_admin_page_begin:
    .incbin "server/admin/page.html"
okserve_admin_page_end:
    .byte 0
    .previous
)");

extern "C" const char okserve_admin_page_begin[];
extern "C" const char okserve_admin_page_end[];

namespace okserve::admin {

std::string_view live_page() noexcept {
    return {okserve_admin_page_begin, static_cast<std::size_t>(okserve_admin_page_end - okserve_admin_page_begin)};
}

}  // namespace okserve::admin
