// The daemon's logs: spdlog's default logger on stdout, as text for people
// or as JSON lines for log shippers (one object per line: time, level,
// thread, msg).
#pragma once

#include <string>

#include "core/status.h"

namespace dogpiled::daemon {

// Sets the level (trace ... off) and format ("text" or "json") of the
// default logger. Call once from main, before any other thread logs.
core::Status SetUpLogging(const std::string& level, const std::string& format);

// Waits (up to a second) until the logging thread has written every line
// logged so far: start-up calls it before it announces its port, so whoever
// waits for the port also sees the start-up lines.
void DrainLogs();

}  // namespace dogpiled::daemon
