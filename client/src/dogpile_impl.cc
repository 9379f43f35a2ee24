#include "src/dogpile_impl.h"

#include <chrono>

#include "src/request_id.h"

namespace dogpiled::internal {
namespace {

using Outcome = v1::AcquireResponse::Outcome;

// The daemon keeps at most this much of an Abandon reason.
constexpr size_t kMaxReasonBytes = 1024;

// A lock-only caller whose cache still lacks the value after being told it
// is there asks again this many times before giving up.
constexpr int kLockOnlyAttempts = 3;

std::string Describe(std::exception_ptr error) {
  std::string what = "creator threw a non-standard exception";
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    what = std::string("creator threw: ") + e.what();
  } catch (...) {
  }
  if (what.size() > kMaxReasonBytes) {
    what.resize(kMaxReasonBytes);
  }
  return what;
}

double NowEpochSeconds() {
  return std::chrono::duration<double>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Flight::Result ValueResult(std::string value, double created,
                           ValueSource source, bool stored = true) {
  Flight::Result r;
  r.value.value = std::move(value);
  r.value.createdtime = created;
  r.value.source = source;
  r.value.stored = stored;
  return r;
}

Flight::Result ErrorResult(Status error) {
  Flight::Result r;
  r.kind = Flight::Result::Kind::kError;
  r.error = std::move(error);
  return r;
}

Flight::Result NotReadyResult() {
  return ErrorResult(Status(StatusCode::kDeadlineExceeded,
                            "no usable value and another caller is "
                            "creating it (wait_timeout is 0)"));
}

Flight::Result RetryResult() {
  Flight::Result r;
  r.kind = Flight::Result::Kind::kRetry;
  return r;
}

// The cache's createdtime, or -1 for "no value" (dogpile's convention).
double Probe(const std::function<double()>& probe) {
  try {
    const double t = probe();
    return t > 0 ? t : -1;
  } catch (const NeedRegeneration&) {
    return -1;
  }
}

}  // namespace

DogpileImpl::DogpileImpl(std::shared_ptr<SessionImpl> session,
                         std::string registry, std::string key,
                         DogpileOptions options)
    : session_(std::move(session)),
      registry_(std::move(registry)),
      key_(std::move(key)),
      options_(std::move(options)) {}

std::shared_ptr<Flight> DogpileImpl::GetFlight(bool lock_only) const {
  // Callers share a flight only if the daemon would answer them alike.
  const std::string id = std::string(lock_only ? "L" : "V") + "|" +
                         std::to_string(session_->id()) + "|" +
                         std::to_string(options_.expiretime.count()) + "|" +
                         registry_ + "|" + key_;
  return session_->client().flights().get(id);
}

NearCache* DogpileImpl::UsableNearCache() const {
  if (options_.expiretime.count() < 0 || options_.early_refresh_beta > 0) {
    return nullptr;
  }
  return session_->near_cache();
}

AcquireResult DogpileImpl::Unreachable(const Status& error,
                                       const Dogpile::Creator& creator) const {
  if (error.code() != StatusCode::kUnavailable &&
      error.code() != StatusCode::kDeadlineExceeded) {
    throw Error(error);
  }
  if (NearCache* near = UsableNearCache()) {
    if (auto hit = near->LookupStale(registry_, key_,
                                     options_.expiretime.count(),
                                     std::chrono::steady_clock::now())) {
      return AcquireResult{std::move(hit->value), hit->created_time,
                           ValueSource::kStale};
    }
  }
  if (session_->client().options().fail_open) {
    return AcquireResult{creator(), NowEpochSeconds(),
                         ValueSource::kCreatedOffline};
  }
  throw Error(error);
}

AcquireResult DogpileImpl::Acquire(const Dogpile::Creator& creator) {
  if (NearCache* near = UsableNearCache()) {
    if (auto hit = near->Lookup(registry_, key_, options_.expiretime.count(),
                                std::chrono::steady_clock::now())) {
      return AcquireResult{std::move(hit->value), hit->created_time,
                           ValueSource::kFresh};
    }
  }
  if (StatusOr<uint64_t> id = session_->UsableId(); !id.ok()) {
    return Unreachable(id.status(), creator);
  }
  const std::shared_ptr<Flight> flight = GetFlight(false);
  bool led = false;
  Flight::Result r =
      flight->Run([&] { return LeadAcquire(creator); }, &led);
  if (r.kind == Flight::Result::Kind::kError) {
    return Unreachable(r.error, creator);
  }
  if (!led && r.value.source == ValueSource::kCreated) {
    r.value.source = ValueSource::kWaited;
  }
  return std::move(r.value);
}

Flight::Result DogpileImpl::LeadAcquire(const Dogpile::Creator& creator) {
  StatusOr<Grant> grant = CallAcquire(std::nullopt);
  if (!grant.ok()) {
    return ErrorResult(grant.status());
  }
  switch (grant->outcome) {
    case v1::AcquireResponse::OUTCOME_FRESH:
      return ValueResult(grant->value, grant->created_time,
                         ValueSource::kFresh);
    case v1::AcquireResponse::OUTCOME_STALE:
      return ValueResult(grant->value, grant->created_time,
                         ValueSource::kStale);
    case v1::AcquireResponse::OUTCOME_CREATE:
      break;
    default:
      return NotReadyResult();
  }
  auto make = [creator]() -> Made { return {creator(), std::nullopt}; };
  if (grant->has_value && options_.async_executor) {
    // dogpile's async_creator: the previous value now, the new one later.
    CreateLater({grant->session_id, grant->token}, make);
    return ValueResult(grant->value, grant->created_time, ValueSource::kStale);
  }
  return CreateNow({grant->session_id, grant->token}, make);
}

void DogpileImpl::AcquireLockOnly(const TimeFn& probe, const TimeFn& create,
                                  const TimeFn& async_create) {
  if (StatusOr<uint64_t> id = session_->UsableId(); !id.ok()) {
    throw Error(id.status());
  }
  const std::shared_ptr<Flight> flight = GetFlight(true);
  for (int attempt = 0; attempt < kLockOnlyAttempts; ++attempt) {
    bool led = false;
    const Flight::Result r = flight->Run(
        [&] { return LeadLockOnly(probe, create, async_create); }, &led);
    if (r.kind == Flight::Result::Kind::kError) {
      throw Error(r.error);
    }
    if (r.kind == Flight::Result::Kind::kValue &&
        (led || Probe(probe) > 0)) {
      return;  // the value is set aside by probe or create
    }
  }
  throw Error(Status(StatusCode::kFailedPrecondition,
                     "value_and_created_fn finds no value right after it "
                     "was created: does the creator store it in the cache?"));
}

Flight::Result DogpileImpl::LeadLockOnly(const TimeFn& probe,
                                         const TimeFn& create,
                                         const TimeFn& async_create) {
  const double cached = Probe(probe);
  StatusOr<Grant> grant = CallAcquire(cached);
  if (!grant.ok()) {
    return ErrorResult(grant.status());
  }
  switch (grant->outcome) {
    case v1::AcquireResponse::OUTCOME_FRESH:
      // After a parked wait the value is new in the cache: read it.
      if (cached > 0 || Probe(probe) > 0) {
        return ValueResult({}, cached, ValueSource::kFresh);
      }
      return RetryResult();
    case v1::AcquireResponse::OUTCOME_STALE:
      return cached > 0 ? ValueResult({}, cached, ValueSource::kStale)
                        : RetryResult();
    case v1::AcquireResponse::OUTCOME_CREATE:
      break;
    default:
      return NotReadyResult();
  }
  if (cached > 0 && options_.async_executor) {
    CreateLater({grant->session_id, grant->token}, [async_create]() -> Made {
      return {std::string(), async_create()};
    });
    return ValueResult({}, cached, ValueSource::kStale);
  }
  return CreateNow({grant->session_id, grant->token}, [&create]() -> Made {
    return {std::string(), create()};
  });
}

StatusOr<DogpileImpl::Grant> DogpileImpl::CallAcquire(
    std::optional<double> client_created_time) {
  StatusOr<uint64_t> session_id = session_->UsableId();
  if (!session_id.ok()) {
    return session_id.status();
  }
  v1::AcquireRequest request;
  request.set_registry(registry_);
  request.set_key(key_);
  request.set_session_id(*session_id);
  // Lets the daemon answer a retry with this call's grant (see below).
  request.set_request_id(NewRequestId());
  request.set_expire_ms(options_.expiretime.count());
  request.set_wait_timeout_ms(options_.wait_timeout.count());
  request.set_creation_timeout_ms(options_.creation_timeout.count());
  if (client_created_time) {
    request.set_client_created_time(*client_created_time);
  }
  request.set_early_refresh_beta(options_.early_refresh_beta);
  // Near-cache: the pending read is recorded before the request leaves, so
  // a drop of this key that arrives meanwhile keeps its answer out.
  NearCache* near = client_created_time ? nullptr : UsableNearCache();
  NearCache::Ticket ticket;
  if (near != nullptr) {
    ticket = near->BeginRead(registry_, key_, std::chrono::steady_clock::now());
    request.set_near_cache(ticket.watch != 0);
  }
  v1::AcquireResponse r;
  const Status status = session_->CallRetrying(
      &v1::Dogpile::Stub::Acquire, request, &r, options_.wait_timeout);
  if (near != nullptr) {
    if (status.ok() && r.outcome() == v1::AcquireResponse::OUTCOME_FRESH &&
        r.has_value()) {
      near->EndRead(ticket, registry_, key_, options_.expiretime.count(),
                    r.near_cache_watch_id(), r.fresh_for_ms(), r.value(),
                    r.created_time());
    } else {
      near->AbandonRead(ticket);
    }
  }
  if (!status.ok()) {
    return status;
  }
  Grant grant;
  grant.outcome = r.outcome();
  grant.has_value = r.has_value();
  grant.value = r.value();
  grant.created_time = r.created_time();
  grant.token = r.token();
  grant.session_id = *session_id;
  return grant;
}

Flight::Result DogpileImpl::CreateNow(RoleId role,
                                      const std::function<Made()>& make) {
  Made made;
  try {
    made = make();
  } catch (...) {
    // Hand the role on at once rather than at the creation timeout.
    CallAbandon(role, Describe(std::current_exception()));
    throw;
  }
  return PublishMade(role, std::move(made));
}

Flight::Result DogpileImpl::PublishMade(RoleId role, Made made) {
  const StatusOr<double> published = CallPublish(role, made);
  if (published.ok()) {
    return ValueResult(std::move(made.first), *published,
                       ValueSource::kCreated);
  }
  const StatusCode code = published.status().code();
  if (code == StatusCode::kFailedPrecondition ||
      code == StatusCode::kNotFound) {
    // The role was lost meanwhile; the value is still what this caller
    // asked for, but the daemon will not serve it to anyone else.
    return ValueResult(std::move(made.first),
                       made.second.value_or(NowEpochSeconds()),
                       ValueSource::kCreated, /*stored=*/false);
  }
  CallAbandon(role, "publish failed: " + published.status().ToString());
  return ErrorResult(published.status());
}

void DogpileImpl::CreateLater(RoleId role, std::function<Made()> make) {
  std::shared_ptr<DogpileImpl> self = shared_from_this();
  try {
    options_.async_executor([self, role, make = std::move(make)] {
      Made made;
      try {
        made = make();
      } catch (...) {
        self->CallAbandon(role, Describe(std::current_exception()));
        self->ReportAsyncError(std::current_exception());
        return;
      }
      const Flight::Result r = self->PublishMade(role, std::move(made));
      if (r.kind == Flight::Result::Kind::kError) {
        self->ReportAsyncError(std::make_exception_ptr(Error(r.error)));
      }
    });
  } catch (...) {
    CallAbandon(role, "the async executor refused the job");
    throw;
  }
}

StatusOr<double> DogpileImpl::CallPublish(RoleId role, const Made& made) {
  // A role of a lost lease is never published through its successor.
  if (Status s = session_->CheckHolds(role.session_id); !s.ok()) {
    return s;
  }
  v1::PublishRequest request;
  request.set_registry(registry_);
  request.set_key(key_);
  request.set_session_id(role.session_id);
  request.set_token(role.token);
  request.set_value(made.first);
  if (made.second) {
    request.set_created_time(*made.second);
  }
  v1::PublishResponse r;
  const Status status =
      session_->Call(&v1::Dogpile::Stub::Publish, request, &r);
  if (!status.ok()) {
    return status;
  }
  return r.created_time();
}

void DogpileImpl::CallAbandon(RoleId role, const std::string& reason) {
  if (!session_->CheckHolds(role.session_id).ok()) {
    return;  // lost with its lease, which was closed or will expire
  }
  v1::AbandonRequest request;
  request.set_registry(registry_);
  request.set_key(key_);
  request.set_session_id(role.session_id);
  request.set_token(role.token);
  request.set_reason(reason);
  v1::AbandonResponse r;
  // Best effort, its answer unused: if it fails the role ends at the
  // creation timeout or with the session anyway, and a retry refused as
  // already released (see ReleaseAnswer) did release it.
  session_->Call(&v1::Dogpile::Stub::Abandon, request, &r);
}

void DogpileImpl::ReportAsyncError(std::exception_ptr error) const {
  if (options_.on_async_error) {
    options_.on_async_error(error);
  }
}

StatusOr<PeekResult> DogpileImpl::Peek() const {
  return session_->client().Peek(registry_, key_, options_.expiretime);
}

Status DogpileImpl::Invalidate(bool hard) const {
  return session_->client().Invalidate(registry_, key_, hard);
}

}  // namespace dogpiled::internal
