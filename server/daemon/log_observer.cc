#include "daemon/log_observer.h"

#include <spdlog/spdlog.h>

namespace dogpiled::daemon {
namespace {

// Keys are arbitrary bytes; keep log lines short and printable.
std::string Printable(const std::string& key) {
  std::string out;
  for (char c : key.substr(0, 64)) {
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  return key.size() > 64 ? out + "..." : out;
}

}  // namespace

void LogObserver::OnSessionEnded(core::SessionId id, const std::string& name,
                                 bool expired) {
  if (expired) {
    spdlog::info("session {} ({}) expired: its grants were released", id,
                 name);
  } else {
    spdlog::debug("session {} ({}) closed", id, name);
  }
}

void LogObserver::OnCreatorEnded(const std::string& registry,
                                 const std::string& key, int64_t held_ms,
                                 bool published) {
  spdlog::debug("{}/{}: creator role ended after {} ms ({})", registry,
                Printable(key), held_ms, published ? "published" : "lost");
}

void LogObserver::OnCreationTimeout(const std::string& registry,
                                    const std::string& key,
                                    core::Token token) {
  spdlog::warn("{}/{}: creator with token {} timed out; the role passes on",
               registry, Printable(key), token);
}

void LogObserver::OnEviction(const std::string& registry,
                             const std::string& key, uint64_t bytes) {
  spdlog::debug("{}/{}: evicted {} bytes for the memory budget", registry,
                Printable(key), bytes);
}

}  // namespace dogpiled::daemon
