// Base fixture: a fresh daemon per test, a Client on it, and sessions.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <utility>

#include "daemon_harness.h"
#include "dogpiled/client.h"
#include "dogpiled/session.h"

namespace dogpiled::testing {

class DaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    daemon_ = Daemon::Start();
    client_ = std::make_unique<Client>(daemon_->target());
  }

  Session OpenSession(SessionOptions options = {}) {
    StatusOr<Session> s = Session::Open(*client_, std::move(options));
    if (!s.ok()) {
      throw std::runtime_error("Session::Open: " + s.status().ToString());
    }
    return std::move(s).value();
  }

  std::unique_ptr<Daemon> daemon_;
  std::unique_ptr<Client> client_;
};

}  // namespace dogpiled::testing
