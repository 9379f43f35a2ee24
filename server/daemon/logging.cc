#include "daemon/logging.h"

#include <nlohmann/json.hpp>
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
#include <thread>
#include <string>
#include <string_view>

namespace dogpiled::daemon {
namespace {

// One JSON object per line. nlohmann/json escapes quotes, backslashes and
// control characters, and (error_handler_t::replace) turns bytes that are
// not UTF-8 into U+FFFD, so every line parses whatever was logged.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg,
              spdlog::memory_buf_t& dest) override {
    const auto level = spdlog::level::to_string_view(msg.level);
    const nlohmann::json line = {
        {"time", Timestamp(msg.time)},
        {"level", std::string_view(level.data(), level.size())},
        {"thread", msg.thread_id},
        {"msg", std::string_view(msg.payload.data(), msg.payload.size())},
    };
    std::string text =
        line.dump(-1, ' ', /*ensure_ascii=*/false,
                  nlohmann::json::error_handler_t::replace);
    text += '\n';
    dest.append(text.data(), text.data() + text.size());
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

void DrainLogs() {
  const auto pool = spdlog::thread_pool();
  for (int i = 0; pool && pool->queue_size() > 0 && i < 1000; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

}  // namespace dogpiled::daemon
