// Drives Coordinator::Tick from one steady_timer on the io_context thread.
// Its queued wake-ups point at it, so it must outlive the io_context's
// run(); Stop() makes it inert, so a replicated member keeps a deposed
// leader's timer until then and may drop that leader's Coordinator.
#pragma once

#include <asio.hpp>
#include <chrono>
#include <cstdint>
#include <optional>

#include "core/coordinator.h"

namespace dogpiled::daemon {

class DeadlineTimer {
 public:
  // `core` must outlive the timer's last wake-up: Stop() first.
  DeadlineTimer(asio::io_context& io, core::Coordinator& core)
      : io_(io), core_(core), timer_(io) {}

  // Re-arms for the core's next deadline; safe to call from any thread.
  void Poke() {
    asio::post(io_, [this] { Arm(); });
  }
  // On the io_context thread: no Tick runs after it.
  void Stop() {
    stopped_ = true;
    timer_.cancel();
  }

 private:
  void Arm() {
    if (stopped_) {
      return;
    }
    std::optional<int64_t> next = core_.NextDeadlineMs();
    if (!next) {
      timer_.cancel();
      return;
    }
    timer_.expires_at(asio::steady_timer::time_point(
        std::chrono::milliseconds(*next)));
    timer_.async_wait([this](const asio::error_code& ec) {
      if (ec || stopped_) {  // re-armed or stopped
        return;
      }
      core_.Tick();
      Arm();
    });
  }

  asio::io_context& io_;
  core::Coordinator& core_;
  asio::steady_timer timer_;
  bool stopped_ = false;  // the io_context thread's
};

}  // namespace dogpiled::daemon
