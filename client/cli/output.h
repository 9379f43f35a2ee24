// How dogpilectl prints: for people by default, JSON with --json. Values
// are bytes; JSON carries them as UTF-8 with invalid bytes replaced.
//
// Thread-compatible: used from the main thread only.
#pragma once

#include <string>

#include "dogpiled/client.h"
#include "dogpiled/dogpile.h"

namespace dogpilectl {

struct Where {
  std::string registry;
  std::string key;
};

void PrintPeek(const Where& where, const dogpiled::PeekResult& peek,
               bool json);
void PrintGet(const Where& where, const dogpiled::AcquireResult& got,
              bool json);
void PrintInvalidated(const Where& where, bool hard, bool json);
void PrintStats(const dogpiled::Stats& stats, bool json);
void PrintCluster(const dogpiled::Cluster& cluster, bool json);
void PrintHealth(const std::string& service, dogpiled::HealthStatus status,
                 bool json);
// One line on stderr: "dogpilectl: CODE: message".
void PrintError(const std::string& message);

}  // namespace dogpilectl
