#include "daemon/config.h"

#include <CLI/CLI.hpp>
#include <sstream>

namespace dogpiled::daemon {
namespace {

template <typename T>
void Flag(CLI::App& app, const std::string& name, T& value,
          const std::string& help, const std::string& env) {
  app.add_option(name, value, help)->envname(env)->capture_default_str();
}

}  // namespace

void AddFlags(CLI::App& app, Config& c) {
  core::Limits& l = c.limits;
  app.set_config("--config", "", "TOML config file (keys are the long flag "
                 "names without dashes, e.g. listen = \"0.0.0.0:7420\")");
  Flag(app, "--listen", c.listen,
       "gRPC address to serve on, HOST:PORT (port 0 picks a free port)",
       "DOGPILED_LISTEN");
  Flag(app, "--state-dir", c.state_dir,
       "Folder for durable state (the fencing-token high-water mark), so "
       "tokens never repeat across restarts", "DOGPILED_STATE_DIR");
  Flag(app, "--port-file", c.port_file,
       "Write the bound port to this file once serving (for tests and "
       "scripts)", "DOGPILED_PORT_FILE");
  Flag(app, "--log-level", c.log_level,
       "trace, debug, info, warn, error or off", "DOGPILED_LOG_LEVEL");
  Flag(app, "--shutdown-grace-ms", c.shutdown_grace_ms,
       "On SIGINT/SIGTERM, how long open streams may take to finish",
       "DOGPILED_SHUTDOWN_GRACE_MS");
  Flag(app, "--default-ttl-ms", l.default_ttl_ms,
       "Session TTL when Open asks for 0", "DOGPILED_DEFAULT_TTL_MS");
  Flag(app, "--min-ttl-ms", l.min_ttl_ms, "Smallest session TTL accepted",
       "DOGPILED_MIN_TTL_MS");
  Flag(app, "--max-ttl-ms", l.max_ttl_ms, "Largest session TTL accepted",
       "DOGPILED_MAX_TTL_MS");
  Flag(app, "--default-creation-timeout-ms", l.default_creation_timeout_ms,
       "Creator role length when Acquire asks for 0",
       "DOGPILED_DEFAULT_CREATION_TIMEOUT_MS");
  Flag(app, "--max-timeout-ms", l.max_timeout_ms,
       "Largest wait_timeout_ms or creation_timeout_ms accepted",
       "DOGPILED_MAX_TIMEOUT_MS");
  Flag(app, "--invalidation-horizon-ms", l.invalidation_horizon_ms,
       "How long an invalidation is remembered for a key nothing else "
       "references", "DOGPILED_INVALIDATION_HORIZON_MS");
  Flag(app, "--max-key-bytes", l.max_key_bytes, "Longest key accepted",
       "DOGPILED_MAX_KEY_BYTES");
  Flag(app, "--max-value-bytes", l.max_value_bytes, "Largest value accepted",
       "DOGPILED_MAX_VALUE_BYTES");
  Flag(app, "--memory-budget-bytes", l.memory_budget_bytes,
       "Bytes of stored values (with keys) before least recently used "
       "values nobody holds or waits on are evicted",
       "DOGPILED_MEMORY_BUDGET_BYTES");
  Flag(app, "--max-sessions", l.max_sessions, "Cap on open sessions",
       "DOGPILED_MAX_SESSIONS");
  Flag(app, "--max-waiters", l.max_waiters, "Cap on parked calls in all",
       "DOGPILED_MAX_WAITERS");
  Flag(app, "--max-waiters-per-key", l.max_waiters_per_key,
       "Cap on parked calls in one key's line",
       "DOGPILED_MAX_WAITERS_PER_KEY");
}

std::string Describe(const Config& c) {
  const core::Limits& l = c.limits;
  std::ostringstream out;
  out << "listen=" << c.listen << " state_dir=" << c.state_dir
      << " log_level=" << c.log_level
      << " shutdown_grace_ms=" << c.shutdown_grace_ms
      << " default_ttl_ms=" << l.default_ttl_ms
      << " min_ttl_ms=" << l.min_ttl_ms << " max_ttl_ms=" << l.max_ttl_ms
      << " default_creation_timeout_ms=" << l.default_creation_timeout_ms
      << " max_timeout_ms=" << l.max_timeout_ms
      << " invalidation_horizon_ms=" << l.invalidation_horizon_ms
      << " max_key_bytes=" << l.max_key_bytes
      << " max_value_bytes=" << l.max_value_bytes
      << " memory_budget_bytes=" << l.memory_budget_bytes
      << " max_sessions=" << l.max_sessions
      << " max_waiters=" << l.max_waiters
      << " max_waiters_per_key=" << l.max_waiters_per_key;
  return out.str();
}

}  // namespace dogpiled::daemon
