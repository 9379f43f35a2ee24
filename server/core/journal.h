// What the core tells durable storage, and what storage gives back at
// start-up, so values and invalidations survive a restart and a restarted
// daemon does not send every client to the backend at once. The core only
// describes changes; the daemon decides files and fsync policy.
#pragma once

#include <string>
#include <vector>

#include "core/types.h"

namespace dogpiled::core {

struct PersistedValue {
  std::string registry;
  std::string key;
  Bytes value;
  double created_time = 0;
  Token token = 0;  // the creator's token: orders it against invalidations
};

struct PersistedInvalidation {
  std::string registry;
  std::string key;  // empty: the whole registry
  bool hard = false;
  Token mark = 0;   // tokens at or below it are doomed
  double wall = 0;  // when, epoch seconds
};

// Called with the Coordinator's lock held, in the order the changes
// happened: implementations append to a buffer or file and return quickly.
class Journal {
 public:
  virtual ~Journal() = default;
  virtual void ValueStored(const PersistedValue& value) = 0;
  virtual void ValueDropped(const std::string& registry,
                            const std::string& key) = 0;
  virtual void Invalidated(const PersistedInvalidation& invalidation) = 0;
};

// Everything durable, as of one instant.
struct PersistedState {
  std::vector<PersistedValue> values;
  std::vector<PersistedInvalidation> invalidations;
};

}  // namespace dogpiled::core
