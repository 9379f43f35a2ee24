#include "daemon/log_observer.h"

#include <spdlog/spdlog.h>

namespace dogpiled::daemon {
namespace {

// SplitMix64's finalizer: a keyed, well-mixed 64-bit hash of an id.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

std::string EscapeForLog(std::string_view text, size_t max) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : text.substr(0, max)) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  return text.size() > max ? out + "..." : out;
}

std::string LogObserver::Client(std::string_view text, size_t max) const {
  if (escape_) {
    return EscapeForLog(text, max);
  }
  return text.size() > max ? std::string(text.substr(0, max)) + "..."
                           : std::string(text);
}

std::string LogObserver::SessionTag(core::SessionId id) const {
  // 32 of 64 mixed bits: enough to follow one session through a log, not
  // enough (nor keyed the same twice) to recover its id.
  static const char kHex[] = "0123456789abcdef";
  const uint64_t h = Mix(id ^ tag_key_);
  std::string out = "s:";
  for (int shift = 60; shift >= 32; shift -= 4) {
    out += kHex[(h >> shift) & 0xF];
  }
  return out;
}

void LogObserver::OnSessionEnded(core::SessionId id, const std::string& name,
                                 bool expired) {
  if (expired) {
    spdlog::info("session {} ({}) expired: its grants were released",
                 SessionTag(id), Client(name, 256));
  } else {
    spdlog::debug("session {} ({}) closed", SessionTag(id),
                  Client(name, 256));
  }
}

void LogObserver::OnCreatorEnded(const std::string& registry,
                                 const std::string& key, int64_t held_ms,
                                 bool published) {
  spdlog::debug("{}/{}: creator role ended after {} ms ({})", registry,
                Client(key), held_ms, published ? "published" : "lost");
}

void LogObserver::OnCreationTimeout(const std::string& registry,
                                    const std::string& key,
                                    core::Token token) {
  spdlog::warn("{}/{}: creator with token {} timed out; the role passes on",
               registry, Client(key), token);
}

void LogObserver::OnEviction(const std::string& registry,
                             const std::string& key, uint64_t bytes) {
  spdlog::debug("{}/{}: evicted {} bytes for the memory budget", registry,
                Client(key), bytes);
}

}  // namespace dogpiled::daemon
