// Runs dogpiled until SIGINT or SIGTERM: the gRPC server (with health and
// reflection), one Asio timer that drives the core's deadlines, and a
// graceful shutdown. Returns the process exit code.
#pragma once

#include "daemon/config.h"

namespace dogpiled::daemon {

int RunDaemon(const Config& config);

}  // namespace dogpiled::daemon
