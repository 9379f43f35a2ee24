// The on-disk record format of the value journal: each record is
// [u32 length][u32 crc32 of payload][payload], little-endian, so a torn
// write at the tail of a log (a crash mid-append) is detected and ignored.
// Replicated mode's log entries are the same records, one after another
// (docs/replication.md): sessions, grants and releases are types 4-7.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/journal.h"

namespace dogpiled::daemon {

enum class RecordType : uint8_t {
  kValue = 1,
  kDrop = 2,
  kInvalidation = 3,
  kSessionOpened = 4,
  kSessionEnded = 5,
  kGranted = 6,
  kReleased = 7,   // its last byte (absent in older logs): the holder's call
  kStamp = 8,      // snapshots only: a lock-only stamp
  kHighWater = 9,  // snapshots only: the token high-water mark
  kLeader = 10,    // a new leader's announcement (snapshots: every member)
  // Snapshots only, each right after its session's kSessionOpened: what
  // answers the session's retries (core::PersistedSession). Snapshots
  // older than these types lack them and still decode.
  kRecentPublish = 11,
  kRecentRelease = 12,
  // A session opened a near-cache watch; in snapshots right after its
  // session's kSessionOpened (core::PersistedSession::watching).
  kSessionWatching = 13,
};

// One decoded record.
struct Record {
  RecordType type = RecordType::kValue;
  core::PersistedValue value;               // kValue; registry/key for kDrop
  core::PersistedInvalidation invalidation;  // kInvalidation
  // kSessionOpened; its id for kSessionEnded and kSessionWatching.
  core::PersistedSession session;
  core::PersistedGrant grant;      // kGranted
  core::PersistedRelease release;  // kReleased
  core::PersistedStamp stamp;      // kStamp
  core::Token high_water = 0;      // kHighWater
  core::PersistedMember member;    // kLeader
  // kRecentPublish, kRecentRelease; their session's id is in session.id.
  core::PersistedPublish publish;
  core::PersistedHolderRelease holder_release;
};

std::string EncodeValue(const core::PersistedValue& value);
std::string EncodeDrop(const std::string& registry, const std::string& key);
std::string EncodeInvalidation(const core::PersistedInvalidation& inv);
std::string EncodeSessionOpened(const core::PersistedSession& session);
std::string EncodeSessionEnded(core::SessionId id);
std::string EncodeSessionWatching(core::SessionId id);
std::string EncodeGranted(const core::PersistedGrant& grant);
std::string EncodeReleased(const core::PersistedRelease& release);
std::string EncodeLeader(const core::PersistedMember& member);

// A whole state as records (a replicated snapshot; snapshot_io.cc), and
// back. nullopt if the bytes are not whole, valid records.
std::string EncodeState(const core::PersistedState& state);
std::optional<core::PersistedState> DecodeState(std::string_view data);

// Hands one decoded record to a journal, as the Coordinator once did.
void ReplayRecord(const Record& record, core::Journal& to);

// A journal that encodes every record it is given, in order, into one
// buffer: what a leader proposes as the log entry of one call.
class RecordEncoder final : public core::Journal {
 public:
  void ValueStored(const core::PersistedValue& value) override;
  void ValueDropped(const std::string& registry,
                    const std::string& key) override;
  void Invalidated(const core::PersistedInvalidation& invalidation) override;
  void SessionOpened(const core::PersistedSession& session) override;
  void SessionEnded(core::SessionId id) override;
  void Granted(const core::PersistedGrant& grant) override;
  void Released(const core::PersistedRelease& release) override;
  void SessionWatching(core::SessionId id) override;
  void LeaderAnnounced(const core::PersistedMember& member) override;
  // The records since the last Take(), and a fresh buffer.
  std::string Take() { return std::exchange(buffer_, {}); }

 private:
  std::string buffer_;
};

// Pads an entry (or snapshot) with zeros to a multiple of 8 bytes, as
// libraft's on-disk log requires; the readers below skip the padding.
void PadEntry(std::string& entry);

// Applies every record of a log entry to `to` (a snapshot's stamps,
// high-water mark and recent calls are not journal records: they are
// skipped). False if the entry is not whole, valid records from end to
// end; then nothing was applied.
bool ApplyEntry(std::string_view entry, core::Journal& to);

// Reads records from a whole file's bytes. Next() stops at a torn or
// corrupt record; Resync() then finds the next whole, valid record after
// it (its length and CRC check out), if there is one.
class RecordReader {
 public:
  explicit RecordReader(std::string_view data) : data_(data) {}
  std::optional<Record> Next();
  bool Resync();
  bool at_end() const { return pos_ == data_.size(); }
  size_t consumed() const { return pos_; }

 private:
  std::optional<Record> DecodeAt(size_t pos, size_t& end) const;

  std::string_view data_;
  size_t pos_ = 0;
};

}  // namespace dogpiled::daemon
