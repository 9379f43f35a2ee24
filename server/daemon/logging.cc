#include "daemon/logging.h"

#include <spdlog/async.h>
#include <google/protobuf/stubs/logging.h>
#include <grpc/support/log.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>

namespace dogpiled::daemon {
namespace {

// Length of the valid UTF-8 sequence at the start of `s`, or 0 if it is not
// one (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF).
size_t Utf8SequenceLength(std::string_view s) {
  const auto b = [&s](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char lead = b(0);
  size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // bounds for the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    n = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    n = 3;
    lo = lead == 0xE0 ? 0xA0 : 0x80;
    hi = lead == 0xED ? 0x9F : 0xBF;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    n = 4;
    lo = lead == 0xF0 ? 0x90 : 0x80;
    hi = lead == 0xF4 ? 0x8F : 0xBF;
  } else {
    return 0;
  }
  if (s.size() < n || b(1) < lo || b(1) > hi) {
    return 0;
  }
  for (size_t i = 2; i < n; ++i) {
    if (b(i) < 0x80 || b(i) > 0xBF) {
      return 0;
    }
  }
  return n;
}

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg,
              spdlog::memory_buf_t& dest) override {
    std::string line = "{\"time\":\"";
    line += Timestamp(msg.time);
    line += "\",\"level\":\"";
    const auto level = spdlog::level::to_string_view(msg.level);
    line.append(level.data(), level.size());
    line += "\",\"thread\":";
    line += std::to_string(msg.thread_id);
    line += ",\"msg\":\"";
    AppendJsonEscaped(std::string_view(msg.payload.data(), msg.payload.size()),
                      line);
    line += "\"}\n";
    dest.append(line.data(), line.data() + line.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }

 private:
  // RFC 3339 in UTC with milliseconds, what log shippers parse by default.
  static std::string Timestamp(spdlog::log_clock::time_point t) {
    const auto since_epoch = t.time_since_epoch();
    const std::time_t secs =
        std::chrono::duration_cast<std::chrono::seconds>(since_epoch).count();
    const auto millis =
        std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch)
            .count() % 1000;
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[40];
    const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(millis));
    return buf;
  }
};

// libprotobuf's own messages (it logs an ERROR for every string field that
// is not UTF-8, for example) go through spdlog, at its level and format,
// so --log-level off means nothing at all is printed.
void ProtobufToSpdlog(google::protobuf::LogLevel level, const char* file,
                      int line, const std::string& message) {
  spdlog::level::level_enum to = spdlog::level::info;
  switch (level) {
    case google::protobuf::LOGLEVEL_INFO: to = spdlog::level::debug; break;
    case google::protobuf::LOGLEVEL_WARNING: to = spdlog::level::warn; break;
    case google::protobuf::LOGLEVEL_ERROR: to = spdlog::level::warn; break;
    case google::protobuf::LOGLEVEL_FATAL: to = spdlog::level::critical; break;
  }
  spdlog::log(to, "protobuf {}:{}: {}", file, line, message);
}

// gRPC's own lines (a failed TLS handshake, say) likewise. gRPC filters by
// its own verbosity (GRPC_VERBOSITY, default ERROR) before this is called.
void GrpcToSpdlog(gpr_log_func_args* args) {
  spdlog::level::level_enum to = spdlog::level::debug;
  if (args->severity == GPR_LOG_SEVERITY_ERROR) {
    to = spdlog::level::warn;  // mostly what a client did wrong
  } else if (args->severity == GPR_LOG_SEVERITY_INFO) {
    to = spdlog::level::info;
  }
  spdlog::log(to, "grpc {}:{}: {}", args->file, args->line, args->message);
}

}  // namespace

void AppendJsonEscaped(std::string_view text, std::string& out) {
  static const char kHex[] = "0123456789abcdef";
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7F) {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    } else if (c >= 0x80) {
      const size_t n = Utf8SequenceLength(text.substr(i));
      if (n == 0) {
        out += "\\ufffd";
        ++i;
        continue;
      }
      out.append(text.substr(i, n));
      i += n;
      continue;
    } else {
      out += static_cast<char>(c);
    }
    ++i;
  }
}

core::Status SetUpLogging(const std::string& level, const std::string& format) {
  const auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") {
    return core::InvalidArgument("--log-level: unknown level '" + level +
                                 "' (trace, debug, info, warn, error, "
                                 "critical or off)");
  }
  if (format != "json" && format != "text") {
    return core::InvalidArgument("--log-format: unknown format '" + format +
                                 "' (text or json)");
  }
  // Lines are logged from inside the core's lock (its observer): they only
  // go into a queue there, and one thread formats, writes and flushes them,
  // so a slow or blocked stdout never stalls a call. A full queue drops the
  // oldest lines rather than wait.
  spdlog::init_thread_pool(8192, 1);
  spdlog::sink_ptr sink;
  if (format == "json") {
    sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();  // no colours
  } else {
    sink = std::make_shared<spdlog::sinks::stdout_color_sink_mt>();
  }
  auto logger = std::make_shared<spdlog::async_logger>(
      "", std::move(sink), spdlog::thread_pool(),
      spdlog::async_overflow_policy::overrun_oldest);
  if (format == "json") {
    logger->set_formatter(std::make_unique<JsonFormatter>());
  }
  spdlog::set_default_logger(std::move(logger));
  spdlog::set_level(parsed);
  google::protobuf::SetLogHandler(&ProtobufToSpdlog);
  gpr_set_log_function(&GrpcToSpdlog);
  // Each line is flushed by the logging thread as soon as it is written,
  // so log shippers see lines as they happen.
  spdlog::flush_on(spdlog::level::trace);
  return {};
}

}  // namespace dogpiled::daemon
