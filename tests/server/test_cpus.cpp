// The default worker count: affinity mask and cgroup quotas, parsed from plain text.
#include <doctest/doctest.h>

#include <sched.h>

#include "server/sys/cpus.hpp"

using okserve::cgroup2_path;
using okserve::cpus_from_cfs;
using okserve::cpus_from_cpu_max;

TEST_SUITE("config") {

TEST_CASE("cgroup v2 cpu.max: a quota rounds up to whole CPUs; max is no limit") {
    CHECK(cpus_from_cpu_max("50000 100000") == std::optional<std::size_t>(1));
    CHECK(cpus_from_cpu_max("100000 100000\n") == std::optional<std::size_t>(1));
    CHECK(cpus_from_cpu_max("150000 100000") == std::optional<std::size_t>(2));
    CHECK(cpus_from_cpu_max("400000 100000") == std::optional<std::size_t>(4));
    CHECK_FALSE(cpus_from_cpu_max("max 100000").has_value());
    CHECK_FALSE(cpus_from_cpu_max("").has_value());
    CHECK_FALSE(cpus_from_cpu_max("garbage").has_value());
    CHECK_FALSE(cpus_from_cpu_max("12x 100000").has_value());
}

TEST_CASE("cgroup v1 quota: -1 is no limit") {
    CHECK(cpus_from_cfs(250000, 100000) == std::optional<std::size_t>(3));
    CHECK_FALSE(cpus_from_cfs(-1, 100000).has_value());
    CHECK_FALSE(cpus_from_cfs(100000, 0).has_value());
}

TEST_CASE("the cgroup v2 path is the 0:: line of /proc/self/cgroup") {
    CHECK(cgroup2_path("0::/user.slice/x.scope\n") == std::optional<std::string_view>("/user.slice/x.scope"));
    CHECK(cgroup2_path("12:cpu,cpuacct:/a\n0::/\n") == std::optional<std::string_view>("/"));
    CHECK_FALSE(cgroup2_path("12:cpu,cpuacct:/a\n").has_value());
}

TEST_CASE("usable_cpus follows the affinity mask") {
    cpu_set_t old;
    REQUIRE(::sched_getaffinity(0, sizeof old, &old) == 0);
    int first = 0;
    while (!CPU_ISSET(first, &old)) ++first;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    REQUIRE(::sched_setaffinity(0, sizeof one, &one) == 0);
    const std::size_t n = okserve::usable_cpus();
    ::sched_setaffinity(0, sizeof old, &old);
    CHECK(n == 1);
    CHECK(okserve::usable_cpus() >= 1);
}

}  // TEST_SUITE
