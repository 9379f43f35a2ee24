// Logs what the core does, through spdlog. Thread-safe (spdlog is); cheap
// when the level is off, since it runs under the core's lock.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/observer.h"

namespace dogpiled::daemon {

// Client-supplied text for a text log line: at most `max` bytes, with
// control characters, backslashes and bytes outside printable ASCII
// written as \xNN, so no client can forge a line or move the terminal.
std::string EscapeForLog(std::string_view text, size_t max = 64);

class LogObserver final : public core::Observer {
 public:
  // `tag_key` keys the short tags that stand for session ids in the log:
  // an id is a bearer credential and never appears in full. `escape`: the
  // log is text, so client-supplied strings are escaped here (the JSON
  // format escapes whole lines itself and gets them as they are).
  LogObserver(uint64_t tag_key, bool escape)
      : tag_key_(tag_key), escape_(escape) {}
  std::string SessionTag(core::SessionId id) const;

  void OnSessionEnded(core::SessionId id, const std::string& name,
                      bool expired) override;
  void OnCreatorEnded(const std::string& registry, const std::string& key,
                      int64_t held_ms, bool published) override;
  void OnCreationTimeout(const std::string& registry, const std::string& key,
                         core::Token token) override;
  void OnEviction(const std::string& registry, const std::string& key,
                  uint64_t bytes) override;

 private:
  // A client-supplied string as it goes into a line.
  std::string Client(std::string_view text, size_t max = 64) const;

  const uint64_t tag_key_;
  const bool escape_;
};

}  // namespace dogpiled::daemon
