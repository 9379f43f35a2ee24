#include "proc_stats.h"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace dogpiled::bench {

ProcSample SampleProc(int pid) {
  ProcSample sample;
  if (pid <= 0) {
    return sample;
  }
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    std::istringstream fields(line);
    std::string name;
    int64_t value = 0;
    fields >> name >> value;
    if (name == "VmRSS:") {
      sample.rss_kb = value;
    } else if (name == "VmHWM:") {
      sample.peak_rss_kb = value;
    } else if (name == "Threads:") {
      sample.threads = value;
    }
  }
  return sample;
}

int64_t CpuTimeNs(int pid) {
  std::ifstream stat(pid == 0 ? std::string("/proc/self/stat")
                              : "/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  std::getline(stat, text);
  // Fields after the command name, which is in parentheses and may hold
  // spaces: state is field 3, utime and stime are fields 14 and 15.
  const size_t close = text.rfind(')');
  if (close == std::string::npos) {
    return 0;
  }
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  int64_t utime = 0;
  int64_t stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) {
      utime = std::stoll(field);
    } else if (i == 15) {
      stime = std::stoll(field);
    }
  }
  return (utime + stime) * (1'000'000'000 / sysconf(_SC_CLK_TCK));
}

nlohmann::json ToJson(const ProcSample& sample) {
  return {{"rss_kb", sample.rss_kb},
          {"peak_rss_kb", sample.peak_rss_kb},
          {"threads", sample.threads}};
}

}  // namespace dogpiled::bench
