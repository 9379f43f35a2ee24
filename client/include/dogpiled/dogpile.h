// dogpile's Lock, over the network: one caller is elected to create a new
// value while everyone else keeps returning the previous one.
#pragma once

#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "dogpiled/export.h"
#include "dogpiled/session.h"
#include "dogpiled/status.h"

namespace dogpiled {

namespace internal {
class DogpileImpl;
}  // namespace internal

// dogpile's NeedRegenerationException. Throw it
// - from value_and_created_fn (lock-only mode) when your cache has no
//   value: the call then counts as "no value" (createdtime -1);
// - from the function given to Dogpile::use() when the value turns out to
//   be unusable: the value is hard-invalidated on the daemon (gone for
//   every process, as the contract's "marks the value as gone" says) and
//   regenerated before the function runs again.
class DOGPILED_EXPORT NeedRegeneration : public std::exception {
 public:
  NeedRegeneration() = default;
  ~NeedRegeneration() override;
  const char* what() const noexcept override;
};

// Runs a job later, on some thread of the caller's choosing (a pool, an
// event loop). The job must run exactly once; it may outlive the Dogpile.
using Executor = std::function<void(std::function<void()>)>;

// Every member has a default, so designated initializers such as
// {.expiretime = std::chrono::minutes(5)} compile without -Wextra warnings.
struct DogpileOptions {
  // dogpile's expiretime: > 0 fresh that long after createdtime; 0 never
  // expires; < 0 always expired. The daemon's clock decides.
  std::chrono::milliseconds expiretime{0};
  // How long to wait for another creator when there is no usable value.
  // 0 fails at once (Error with DEADLINE_EXCEEDED) instead of waiting.
  std::chrono::milliseconds wait_timeout{60'000};
  // How long a creator elected here may take; 0: the daemon's default.
  std::chrono::milliseconds creation_timeout{0};
  // > 0: probabilistic early refresh (XFetch); see AcquireRequest in
  // proto/dogpiled/v1/dogpile.proto. 1.0 is the paper's default.
  double early_refresh_beta = 0;
  // Set: dogpile's async_creator. When this caller is elected while a
  // previous value exists, that value is returned at once and the creator
  // runs as a job on this executor, publishing when done. With no previous
  // value the creator still runs in the calling thread. In lock-only mode
  // "a previous value" means one your cache reports: the daemon's answer
  // does not say whether a hard invalidation voided it, so after a hard
  // invalidation that value may still be returned once while the new one
  // is made.
  Executor async_executor{};
  // Errors of async jobs (the creator threw, or Publish failed); nobody
  // else could see them. Runs on the executor's thread.
  std::function<void(std::exception_ptr)> on_async_error{};
};

// Where the value acquire_result() returned came from.
enum class ValueSource {
  kFresh,    // the stored value, not expired
  kStale,    // expired, someone else (or an async job) is recreating it
  kCreated,  // this call ran the creator
  kWaited,   // another thread of this process created it while this one
             // waited in-process (a wait parked on the daemon for another
             // process's creator answers kFresh)
  kCreatedOffline,  // the daemon could not be reached and
                    // ClientOptions::fail_open ran the creator here;
                    // nothing was stored
};
DOGPILED_EXPORT const char* ValueSourceName(ValueSource source);

struct AcquireResult {
  std::string value{};
  double createdtime = -1;  // epoch seconds
  ValueSource source = ValueSource::kFresh;
  // false only for kCreated when the daemon refused to store the value
  // because the role was lost meanwhile (an Invalidate, the creation
  // timeout, or the session's end): the caller still gets the value it
  // made, but nobody else will.
  bool stored = true;
};

// One key of one registry, as a dogpile Lock. The key is bytes of anything
// (UTF-8 or not); the registry a name of [A-Za-z0-9._:-]. Two modes, chosen
// per call:
// - acquire(creator): the daemon holds the value (bytes). Fresh and stale
//   values come back from the daemon; an elected creator publishes there.
// - acquire(creator, value_and_created_fn): lock-only, for callers who
//   keep the value in their own cache (e.g. memcached). The daemon only
//   decides, from the createdtime your cache reports, who regenerates.
//
// Threads of one process that ask for the same key at once through the
// same Session make one round trip: the first one asks the daemon (and
// creates if elected), the others wait for it in-process and share its
// answer. If the creator throws, the role is abandoned on the daemon (the
// next waiter anywhere is elected, including the next thread here) and
// the exception reaches the caller whose creator threw.
//
// Errors of the daemon or the transport are thrown as Error: NOT_FOUND
// (the session is gone), DEADLINE_EXCEEDED (waited wait_timeout for
// another creator), UNAVAILABLE (daemon unreachable), ...
//
// Thread-safe: every method may be called from any thread at once. The
// creator and value_and_created_fn run on the calling thread (or on the
// executor, for async creation).
class DOGPILED_EXPORT Dogpile {
 public:
  using Creator = std::function<std::string()>;

  Dogpile(const Session& session, std::string registry, std::string key,
          DogpileOptions options = {});
  ~Dogpile();
  Dogpile(Dogpile&&) noexcept;
  Dogpile& operator=(Dogpile&&) noexcept;
  Dogpile(const Dogpile&) = delete;
  Dogpile& operator=(const Dogpile&) = delete;

  // The value, fresh, stale or newly created; see the class comment.
  std::string acquire(const Creator& creator);
  // The same, saying where the value came from.
  AcquireResult acquire_result(const Creator& creator);

  // Lock-only mode. Both callables return a (value, createdtime) pair or
  // tuple, like dogpile's: creator makes a new value and stores it in your
  // cache; value_and_created_fn reads your cache, or throws NeedRegeneration
  // when it has nothing (a createdtime <= 0 counts as nothing, too).
  // The creator must be copyable when async_executor is set.
  template <typename CreatorFn, typename ValueAndCreatedFn>
  auto acquire(CreatorFn creator, ValueAndCreatedFn value_and_created_fn)
      -> std::decay_t<
          std::tuple_element_t<0, std::invoke_result_t<ValueAndCreatedFn&>>>;

  // Acquires the value and calls fn(value). If fn throws NeedRegeneration,
  // the value is hard-invalidated, acquired again (so regenerated, by this
  // caller or whoever is elected first) and fn runs once more; a second
  // NeedRegeneration propagates.
  template <typename Fn>
  decltype(auto) use(const Creator& creator, Fn&& fn);

  // The value the daemon holds now (one Peek, no role taken): its
  // createdtime (-1 when there is none), whether there is one, and whether
  // it is expired by this Dogpile's expiretime (true when there is none).
  // In lock-only mode the daemon holds no value: ask your cache.
  double createdtime() const;
  bool has_value() const;
  bool is_expired() const;

  // Invalidates this key on the daemon: soft keeps the value as a stale
  // fallback, hard makes it absent.
  Status invalidate(bool hard = true) const;

 private:
  using TimeFn = std::function<double()>;
  // probe reads the cache (may throw NeedRegeneration); create runs the
  // creator in this thread; async_create runs it on the executor. Each
  // returns the createdtime; probe and create also keep the value aside.
  void AcquireLockOnly(const TimeFn& probe, const TimeFn& create,
                       TimeFn async_create);

  std::shared_ptr<internal::DogpileImpl> impl_;
};

template <typename CreatorFn, typename ValueAndCreatedFn>
auto Dogpile::acquire(CreatorFn creator, ValueAndCreatedFn value_and_created_fn)
    -> std::decay_t<
        std::tuple_element_t<0, std::invoke_result_t<ValueAndCreatedFn&>>> {
  using Value = std::decay_t<
      std::tuple_element_t<0, std::invoke_result_t<ValueAndCreatedFn&>>>;
  std::optional<Value> value;
  AcquireLockOnly(
      [&]() -> double {
        auto got = value_and_created_fn();
        value = std::move(std::get<0>(got));
        return static_cast<double>(std::get<1>(got));
      },
      [&]() -> double {
        auto made = creator();
        value = std::move(std::get<0>(made));
        return static_cast<double>(std::get<1>(made));
      },
      [creator]() mutable -> double {
        return static_cast<double>(std::get<1>(creator()));
      });
  if (!value) {
    throw Error(Status(StatusCode::kInternal, "lock-only acquire: no value"));
  }
  return std::move(*value);
}

template <typename Fn>
decltype(auto) Dogpile::use(const Creator& creator, Fn&& fn) {
  {
    const std::string value = acquire(creator);
    try {
      return fn(value);
    } catch (const NeedRegeneration&) {
      if (Status s = invalidate(/*hard=*/true); !s.ok()) {
        throw Error(s);
      }
    }
  }
  const std::string value = acquire(creator);
  return fn(value);
}

}  // namespace dogpiled
