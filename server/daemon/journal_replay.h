// Reading the value journal's files back at start-up: which files are
// ours, and replaying their records in order, with what a damaged record
// means for the values read before it. Not thread-safe; start-up only.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/journal.h"
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "daemon/record_io.h"

namespace dogpiled::daemon {

// "values.<gen>.snap" or "values.<gen>.log"; anything else is not ours.
inline bool ParseName(const std::string& name, uint64_t& gen, std::string& ext) {
  constexpr std::string_view kPrefix = "values.";
  if (!name.starts_with(kPrefix)) {
    return false;
  }
  const size_t dot = name.find('.', kPrefix.size());
  if (dot == std::string::npos || dot == kPrefix.size()) {
    return false;
  }
  const std::string digits = name.substr(kPrefix.size(), dot - kPrefix.size());
  if (digits.size() > 18 ||
      digits.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  ext = name.substr(dot + 1);
  if (ext != "snap" && ext != "log") {
    return false;
  }
  gen = std::stoull(digits);
  return true;
}

inline double WallNow() {
  return std::chrono::duration<double>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Applies records in order to a state keyed by (registry, key), keeping
// each value's place in time so the most recently used come back first.
class Replay {
 public:
  // `snapshot`: damage anywhere in it voids all its values (its marks come
  // first, so a lost mark could void any of them). `last`: the newest log,
  // whose damaged tail is a torn write, not a loss.
  void Feed(std::string_view data, const std::string& name, bool snapshot,
            bool last) {
    RecordReader reader(data);
    bool damaged = false;
    while (true) {
      while (auto r = reader.Next()) {
        Apply(std::move(*r));
      }
      if (reader.at_end()) {
        break;
      }
      const size_t at = reader.consumed();
      const bool more = reader.Resync();
      if (!more && last && !snapshot) {
        spdlog::info("value journal: {} ends in a torn record at byte {} "
                     "(a write cut short by a crash); ignored", name, at);
        break;
      }
      damaged = true;
      Damage(name, at, more ? reader.consumed() : data.size());
      if (!more) {
        break;
      }
    }
    if (snapshot && damaged) {
      values_.clear();
    }
  }

  core::PersistedState Take() {
    std::vector<std::pair<uint64_t, core::PersistedValue>> ordered;
    ordered.reserve(values_.size());
    for (auto& [id, v] : values_) {
      ordered.push_back(std::move(v));
    }
    std::sort(ordered.begin(), ordered.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [seq, v] : ordered) {
      state_.values.push_back(std::move(v));
    }
    return std::move(state_);
  }
  uint64_t damaged() const { return damaged_; }

 private:
  void Apply(Record r) {
    auto id = std::make_pair(r.value.registry, r.value.key);
    switch (r.type) {
      case RecordType::kValue:
        max_token_ = std::max(max_token_, r.value.token);
        values_[id] = {seq_++, std::move(r.value)};
        break;
      case RecordType::kDrop:
        values_.erase(id);
        break;
      case RecordType::kInvalidation:
        max_token_ = std::max(max_token_, r.invalidation.mark);
        state_.invalidations.push_back(std::move(r.invalidation));
        break;
      default:  // replicated mode's records: a single node writes none
        break;
    }
  }

  // A record was lost: it may have been an invalidation, so nothing read
  // before it may come back as fresh. Values read so far are dropped, and a
  // daemon-wide soft mark makes every older token and lock-only stamp
  // count as expired.
  void Damage(const std::string& name, size_t from, size_t to) {
    ++damaged_;
    spdlog::error("value journal: {} is damaged from byte {} to {}; {} "
                  "values read before it are dropped and older stamps "
                  "count as expired (a colder cache, never a wrong one)",
                  name, from, to, values_.size());
    values_.clear();
    state_.invalidations.push_back({"", "", false, max_token_, WallNow()});
  }

  std::map<std::pair<std::string, std::string>,
           std::pair<uint64_t, core::PersistedValue>>
      values_;
  core::PersistedState state_;
  uint64_t seq_ = 0;
  core::Token max_token_ = 0;
  uint64_t damaged_ = 0;
};

}  // namespace dogpiled::daemon
