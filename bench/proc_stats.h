// Memory and thread count of another process, from /proc.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>

namespace dogpiled::bench {

struct ProcSample {
  int64_t rss_kb = 0;       // VmRSS
  int64_t peak_rss_kb = 0;  // VmHWM
  int64_t threads = 0;
};

// Zeros if the process is gone or pid is 0.
ProcSample SampleProc(int pid);

// User plus system CPU time a process has used, in nanoseconds (0 if gone);
// pid 0 means this process.
int64_t CpuTimeNs(int pid);
nlohmann::json ToJson(const ProcSample& sample);

}  // namespace dogpiled::bench
