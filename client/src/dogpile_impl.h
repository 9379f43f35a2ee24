// The dogpile protocol for one key: Acquire, then Publish or Abandon when
// elected, with the in-process herd collapsed through a Flight.
//
// Thread-safe: every public method may be called from any thread at once.
// Async creation jobs keep a reference, so they may outlive the Dogpile.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "dogpiled/dogpile.h"
#include "src/flight.h"
#include "src/session_impl.h"

namespace dogpiled::internal {

class DogpileImpl final : public std::enable_shared_from_this<DogpileImpl> {
 public:
  using TimeFn = std::function<double()>;

  DogpileImpl(std::shared_ptr<SessionImpl> session, std::string registry,
              std::string key, DogpileOptions options);

  AcquireResult Acquire(const Dogpile::Creator& creator);
  void AcquireLockOnly(const TimeFn& probe, const TimeFn& create,
                       const TimeFn& async_create);
  StatusOr<PeekResult> Peek() const;
  Status Invalidate(bool hard) const;

 private:
  // What Acquire answered.
  struct Grant {
    int outcome = 0;  // v1::AcquireResponse::Outcome
    bool has_value = false;
    std::string value;
    double created_time = 0;
    uint64_t token = 0;
    uint64_t session_id = 0;  // the lease the grant was taken under
  };
  // The session's near-cache if this Dogpile may use it: value mode, a
  // value that can be fresh, no early refresh (the daemon decides that on
  // each read). Else null.
  NearCache* UsableNearCache() const;
  // A creator role: its lease and its fencing token.
  struct RoleId {
    uint64_t session_id = 0;
    uint64_t token = 0;
  };
  // A value made by a creator, and its createdtime if the creator stamped
  // one (lock-only), else the daemon stamps it.
  using Made = std::pair<std::string, std::optional<double>>;

  Flight::Result LeadAcquire(const Dogpile::Creator& creator);
  Flight::Result LeadLockOnly(const TimeFn& probe, const TimeFn& create,
                              const TimeFn& async_create);

  StatusOr<Grant> CallAcquire(std::optional<double> client_created_time);
  // The daemon could not answer the call that failed with `error`: a
  // near-cached value
  // within max_stale_on_error, else the creator's, run here (fail_open),
  // else the error, thrown.
  AcquireResult Unreachable(const Status& error,
                            const Dogpile::Creator& creator) const;
  // Runs `make` in this thread and publishes; abandons and rethrows if it
  // throws.
  Flight::Result CreateNow(RoleId role, const std::function<Made()>& make);
  // Hands `make` to the executor; the job publishes or abandons.
  void CreateLater(RoleId role, std::function<Made()> make);
  // Publishes; a refused token still yields the value (stored=false).
  Flight::Result PublishMade(RoleId role, Made made);
  StatusOr<double> CallPublish(RoleId role, const Made& made);
  void CallAbandon(RoleId role, const std::string& reason);
  void ReportAsyncError(std::exception_ptr error) const;
  std::shared_ptr<Flight> GetFlight(bool lock_only) const;

  // Constant after construction.
  const std::shared_ptr<SessionImpl> session_;
  const std::string registry_;
  const std::string key_;
  const DogpileOptions options_;
};

}  // namespace dogpiled::internal
