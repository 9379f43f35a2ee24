// What the core tells durable storage, and what storage gives back at
// start-up, so values and invalidations survive a restart and a restarted
// daemon does not send every client to the backend at once. The core only
// describes changes; the daemon decides files and fsync policy.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/status.h"
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
// happened: implementations hand the record to a writer and return at once,
// never waiting on a write or a sync (values are shared, not copied).
class Journal {
 public:
  virtual ~Journal() = default;
  virtual void ValueStored(const PersistedValue& value) = 0;
  virtual void ValueDropped(const std::string& registry,
                            const std::string& key) = 0;
  virtual void Invalidated(const PersistedInvalidation& invalidation) = 0;
};

// Tells a caller when the changes journaled so far are as durable as the
// fsync policy promises, so an answer that depends on durability goes out
// only then, without any lock held meanwhile.
class DurabilityBarrier {
 public:
  virtual ~DurabilityBarrier() = default;
  // OK, or UNAVAILABLE (reason STORAGE_FAILED) once a write or sync failed:
  // then nothing new can be made durable.
  virtual Status Health() const = 0;
  // Calls `done` exactly once, when every record journaled before this call
  // is durable (OK) or never will be (UNAVAILABLE). It may run at once on
  // this thread, or later on the writer's.
  virtual void AfterDurable(std::function<void(Status)> done) = 0;
};

// Everything durable, as of one instant.
struct PersistedState {
  std::vector<PersistedValue> values;
  std::vector<PersistedInvalidation> invalidations;
};

}  // namespace dogpiled::core
