#include "cli/output.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string_view>
#include <utility>
#include <vector>

namespace dogpilectl {
namespace {

using nlohmann::json;

void EmitJson(const json& j) {
  std::cout << j.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
}

double NowSeconds() {
  return std::chrono::duration<double>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// "2026-11-26 06:30:01.123 UTC (12.3 s ago)"
std::string DescribeTime(double epoch) {
  const auto whole = static_cast<std::time_t>(epoch);
  std::tm tm{};
  gmtime_r(&whole, &tm);
  char date[32];
  std::strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
  char out[96];
  const int millis = static_cast<int>((epoch - static_cast<double>(whole)) *
                                      1000.0);
  std::snprintf(out, sizeof(out), "%s.%03d UTC (%.1f s ago)", date, millis,
                NowSeconds() - epoch);
  return out;
}

// Printable values are shown as text; others by size only.
std::string DescribeValue(const std::string& value) {
  for (unsigned char c : value) {
    if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) {
      return "<" + std::to_string(value.size()) + " bytes, binary>";
    }
  }
  std::string trimmed = value;
  while (!trimmed.empty() && trimmed.back() == '\n') {
    trimmed.pop_back();
  }
  // Continuation lines line up under the first.
  std::string shown;
  for (char c : trimmed) {
    shown += c;
    if (c == '\n') {
      shown += std::string(13, ' ');
    }
  }
  return shown;
}

void Row(std::string_view name, const std::string& value) {
  std::cout << name << ":" << std::string(12 - name.size(), ' ') << value
            << "\n";
}

const char* YesNo(bool b) { return b ? "yes" : "no"; }

}  // namespace

void PrintPeek(const Where& where, const dogpiled::PeekResult& peek,
               bool json_out) {
  if (json_out) {
    json j = {{"registry", where.registry}, {"key", where.key},
              {"has_value", peek.has_value}, {"is_expired", peek.is_expired},
              {"creating", peek.creating}};
    if (peek.has_value) {
      j["value"] = peek.value;
      j["created_time"] = peek.created_time;
    }
    EmitJson(j);
    return;
  }
  Row("key", where.registry + "/" + where.key);
  if (peek.has_value) {
    Row("value", DescribeValue(peek.value));
    Row("size", std::to_string(peek.value.size()) + " bytes");
    Row("created", DescribeTime(peek.created_time));
    Row("expired", YesNo(peek.is_expired));
  } else {
    Row("value", "(none)");
  }
  Row("creating", YesNo(peek.creating));
}

void PrintGet(const Where& where, const dogpiled::AcquireResult& got,
              bool json_out) {
  if (json_out) {
    EmitJson({{"registry", where.registry},
              {"key", where.key},
              {"source", dogpiled::ValueSourceName(got.source)},
              {"value", got.value},
              {"created_time", got.createdtime},
              {"stored", got.stored}});
    return;
  }
  // The value itself, byte for byte, so $(dogpilectl get ...) round-trips.
  std::cout << got.value << std::flush;
}

void PrintInvalidated(const Where& where, bool hard, bool json_out) {
  if (json_out) {
    EmitJson({{"registry", where.registry},
              {"key", where.key},
              {"hard", hard},
              {"invalidated", true}});
    return;
  }
  const std::string what = where.key.empty()
                               ? "every key of " + where.registry
                               : where.registry + "/" + where.key;
  std::cout << "invalidated " << what << (hard ? " (hard)" : " (soft)")
            << "\n";
}

void PrintStats(const dogpiled::Stats& s, bool json_out) {
  const std::vector<std::pair<const char*, uint64_t>> rows = {
#define DOGPILED_STATS_ROW(name, number) {#name, s.name},
      DOGPILED_STATS_FIELDS(DOGPILED_STATS_ROW)
#undef DOGPILED_STATS_ROW
  };
  if (json_out) {
    json j = json::object();
    for (const auto& [name, value] : rows) {
      j[name] = value;
    }
    EmitJson(j);
    return;
  }
  for (const auto& [name, value] : rows) {
    const std::string n(name);
    std::cout << n << std::string(20 - n.size(), ' ') << value << "\n";
  }
}

void PrintCluster(const dogpiled::Cluster& c, bool json_out) {
  if (json_out) {
    json members = json::array();
    for (const auto& m : c.members) {
      members.push_back({{"id", m.id},
                         {"raft_address", m.raft_address},
                         {"client_address", m.client_address},
                         {"role", m.role},
                         {"voter", m.voter}});
    }
    EmitJson({{"members", members},
              {"self_id", c.self_id},
              {"leader_id", c.leader_id},
              {"leader_client_address", c.leader_client_address},
              {"term", c.term},
              {"commit_index", c.commit_index},
              {"applied_index", c.applied_index},
              {"serving", c.serving}});
    return;
  }
  // Columns at least `width` wide, one space apart however long.
  const auto cell = [](const std::string& text, size_t width) {
    return text + std::string(text.size() < width ? width - text.size() : 1,
                              ' ');
  };
  std::cout << cell("ID", 4) << cell("ROLE", 11) << cell("RAFT", 23)
            << "CLIENT\n";
  for (const auto& m : c.members) {
    std::cout << cell(std::to_string(m.id) + (m.id == c.self_id ? "*" : ""), 4)
              << cell(m.voter ? m.role : m.role + " (no vote yet)", 11)
              << cell(m.raft_address, 23)
              << (m.client_address.empty() ? "-" : m.client_address) << "\n";
  }
  std::cout << "leader " << (c.leader_id == 0 ? std::string("none")
                                               : std::to_string(c.leader_id))
            << ", term " << c.term << ", commit index " << c.commit_index
            << ", applied " << c.applied_index
            << (c.serving ? ", this member serves" : "") << "\n";
}

void PrintHealth(const std::string& service, dogpiled::HealthStatus status,
                 bool json_out) {
  if (json_out) {
    EmitJson({{"service", service},
              {"status", dogpiled::HealthStatusName(status)}});
    return;
  }
  std::cout << dogpiled::HealthStatusName(status) << "\n";
}

void PrintError(const std::string& message) {
  std::cerr << "dogpilectl: " << message << "\n";
}

}  // namespace dogpilectl
