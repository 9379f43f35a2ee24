#include "replication/raft_fsm.h"

#include <cstring>
#include <string>
#include <string_view>

#include "daemon/record_io.h"

namespace dogpiled::replication {
namespace {

ReplicaFsm* Self(raft_fsm* fsm) { return static_cast<ReplicaFsm*>(fsm->data); }

std::string_view View(const raft_buffer& buf) {
  return {static_cast<const char*>(buf.base), buf.len};
}

}  // namespace

ReplicaFsm::ReplicaFsm(CommittedState* state) : state_(state) {
  fsm_.version = 1;
  fsm_.data = this;
  fsm_.apply = &ReplicaFsm::Apply;
  fsm_.snapshot = &ReplicaFsm::Snapshot;
  fsm_.restore = &ReplicaFsm::Restore;
}

int ReplicaFsm::Apply(raft_fsm* fsm, const raft_buffer* buf, void** result) {
  ReplicaFsm* self = Self(fsm);
  if (!daemon::ApplyEntry(View(*buf), *self->state_)) {
    ++self->bad_entries_;
  }
  ++self->applied_;
  *result = nullptr;
  if (self->after_apply_) {
    self->after_apply_();
  }
  return 0;
}

int ReplicaFsm::Snapshot(raft_fsm* fsm, raft_buffer* bufs[],
                         unsigned* n_bufs) {
  std::string data = daemon::EncodeState(Self(fsm)->state_->ToPersisted());
  daemon::PadEntry(data);
  // Both the array and the bytes become the library's (raft_free).
  auto* out = static_cast<raft_buffer*>(raft_malloc(sizeof(raft_buffer)));
  if (out == nullptr) {
    return RAFT_NOMEM;
  }
  out->len = data.size();
  out->base = raft_malloc(data.empty() ? 1 : data.size());
  if (out->base == nullptr) {
    raft_free(out);
    return RAFT_NOMEM;
  }
  std::memcpy(out->base, data.data(), data.size());
  *bufs = out;
  *n_bufs = 1;
  return 0;
}

int ReplicaFsm::Restore(raft_fsm* fsm, raft_buffer* buf) {
  std::optional<core::PersistedState> state =
      daemon::DecodeState(View(*buf));
  if (!state) {
    return RAFT_CORRUPT;  // nothing was changed
  }
  Self(fsm)->state_->Load(*state);
  ++Self(fsm)->restores_;
  raft_free(buf->base);  // ours to free once restored
  if (Self(fsm)->after_apply_) {
    Self(fsm)->after_apply_();
  }
  return 0;
}

}  // namespace dogpiled::replication
