#include "dogpiled/dogpile.h"

#include <utility>

#include "src/dogpile_impl.h"

namespace dogpiled {

NeedRegeneration::~NeedRegeneration() = default;

const char* NeedRegeneration::what() const noexcept {
  return "dogpiled::NeedRegeneration: the value must be regenerated";
}

const char* ValueSourceName(ValueSource source) {
  switch (source) {
    case ValueSource::kFresh: return "FRESH";
    case ValueSource::kStale: return "STALE";
    case ValueSource::kCreated: return "CREATED";
    case ValueSource::kWaited: return "WAITED";
    case ValueSource::kCreatedOffline: return "CREATED_OFFLINE";
  }
  return "UNKNOWN";
}

Dogpile::Dogpile(const Session& session, std::string registry,
                 std::string key, DogpileOptions options)
    : impl_(std::make_shared<internal::DogpileImpl>(
          session.impl_, std::move(registry), std::move(key),
          std::move(options))) {}

Dogpile::~Dogpile() = default;
Dogpile::Dogpile(Dogpile&&) noexcept = default;
Dogpile& Dogpile::operator=(Dogpile&&) noexcept = default;

std::string Dogpile::acquire(const Creator& creator) {
  return impl_->Acquire(creator).value;
}

AcquireResult Dogpile::acquire_result(const Creator& creator) {
  return impl_->Acquire(creator);
}

void Dogpile::AcquireLockOnly(const TimeFn& probe, const TimeFn& create,
                              TimeFn async_create) {
  impl_->AcquireLockOnly(probe, create, async_create);
}

double Dogpile::createdtime() const {
  StatusOr<PeekResult> peeked = impl_->Peek();
  if (!peeked.ok()) {
    throw Error(peeked.status());
  }
  return peeked->has_value ? peeked->created_time : -1;
}

bool Dogpile::has_value() const {
  StatusOr<PeekResult> peeked = impl_->Peek();
  if (!peeked.ok()) {
    throw Error(peeked.status());
  }
  return peeked->has_value;
}

bool Dogpile::is_expired() const {
  StatusOr<PeekResult> peeked = impl_->Peek();
  if (!peeked.ok()) {
    throw Error(peeked.status());
  }
  return !peeked->has_value || peeked->is_expired;
}

Status Dogpile::invalidate(bool hard) const {
  return impl_->Invalidate(hard);
}

}  // namespace dogpiled
