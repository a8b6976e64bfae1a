// okserve CPU count: how many CPUs this process may really use, for the default number of
// workers. Knows nothing of threads or HTTP.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace okserve {

// The CPUs in this process's affinity mask (sched_getaffinity, so `taskset -c 0` gives 1),
// capped by a cgroup CPU quota (v2 cpu.max, or v1 cpu.cfs_quota_us / cpu.cfs_period_us),
// rounded up. At least 1.
std::size_t usable_cpus();

// cgroup v2 cpu.max ("max 100000" or "150000 100000"): the CPUs it allows, rounded up;
// nullopt for no limit or text that is not a cpu.max line.
std::optional<std::size_t> cpus_from_cpu_max(std::string_view text);
// cgroup v1: quota and period in microseconds; a quota of -1 means no limit.
std::optional<std::size_t> cpus_from_cfs(long long quota_us, long long period_us);
// The cgroup v2 path of this process from /proc/self/cgroup text ("0::/some/path").
std::optional<std::string_view> cgroup2_path(std::string_view proc_self_cgroup);

}  // namespace okserve
