#include "tools/loadgen/merge.hpp"

#include <cstdio>

namespace okserve::loadgen {

int report_main(std::span<const std::string_view>) {
    std::fputs("loadgen: report: not built yet\n", stderr);
    return 2;
}

}  // namespace okserve::loadgen
