// Bearer tokens and TLS, against a daemon configured for them.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "cli_runner.h"
#include "daemon_harness.h"
#include "dogpiled/dogpiled.h"

namespace dogpiled {
namespace {

using testing::Daemon;
using testing::TempDir;

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

class BearerTokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(dir_.path() + "/tokens") << "secure=s3cret\n";
    daemon_ = Daemon::Start({"--registry-token-file", dir_.path() + "/tokens"});
  }
  Client MakeClient(const std::string& token) {
    ClientOptions options;
    options.target = daemon_->target();
    options.bearer_token = token;
    return Client(options);
  }

  TempDir dir_;
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(BearerTokenTest, ProtectedRegistryNeedsTheToken) {
  Client anonymous = MakeClient("");
  EXPECT_EQ(anonymous.Peek("secure", "k").status().code(),
            StatusCode::kUnauthenticated);
  EXPECT_TRUE(anonymous.Peek("open", "k").ok());
  EXPECT_EQ(MakeClient("wrong").Peek("secure", "k").status().code(),
            StatusCode::kPermissionDenied);
}

TEST_F(BearerTokenTest, EveryCallCarriesTheToken) {
  Client client = MakeClient("s3cret");
  StatusOr<Session> session = Session::Open(client);
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  Dogpile dogpile(*session, "secure", "k");
  EXPECT_EQ(dogpile.acquire([] { return std::string("v"); }), "v");
  ReadWriteMutex mutex(*session, "secure", "k");
  EXPECT_TRUE(mutex.acquire_write_lock(false));
  EXPECT_TRUE(mutex.release_write_lock().ok());
  EXPECT_TRUE(client.Invalidate("secure", "k", true).ok());
}

TEST_F(BearerTokenTest, DogpilectlTakesTheTokenFromFlagOrEnvironment) {
  EXPECT_EQ(testing::RunCli(daemon_->target(), {"peek", "secure", "k"})
                .exit_code,
            4);
  EXPECT_EQ(testing::RunCli(daemon_->target(),
                            {"--token", "s3cret", "get", "secure", "k",
                             "--create", "printf v"})
                .exit_code,
            0);
  setenv("DOGPILED_TOKEN", "s3cret", 1);
  const testing::CliResult r =
      testing::RunCli(daemon_->target(), {"peek", "secure", "k"});
  unsetenv("DOGPILED_TOKEN");
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

// A CA, a server certificate for 127.0.0.1 and a client certificate, made
// with openssl at test time.
class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::system("command -v openssl >/dev/null 2>&1") != 0) {
      GTEST_SKIP() << "openssl is not installed";
    }
    const std::string d = dir_.path();
    Openssl("req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem "
            "-days 2 -subj /CN=dogpiled-test-ca");
    for (const char* name : {"server", "client"}) {
      const std::string n = name;
      std::ofstream(d + "/" + n + ".ext")
          << (n == "server" ? "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                            : "subjectAltName=DNS:client.test\n");
      Openssl("req -newkey rsa:2048 -nodes -keyout " + n + ".key -out " + n +
              ".csr -subj /CN=" + n);
      Openssl("x509 -req -in " + n + ".csr -CA ca.pem -CAkey ca.key "
              "-CAcreateserial -out " + n + ".pem -days 2 -extfile " + n +
              ".ext");
    }
  }
  void Openssl(const std::string& args) {
    const std::string command =
        "cd " + dir_.path() + " && openssl " + args + " >/dev/null 2>&1";
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
  }
  std::string File(const std::string& name) {
    return Slurp(dir_.path() + "/" + name);
  }
  ClientOptions TlsOptionsFor(const Daemon& daemon, bool with_cert) {
    ClientOptions options;
    options.target = daemon.target();
    options.tls.enabled = true;
    options.tls.root_certs_pem = File("ca.pem");
    if (with_cert) {
      options.tls.cert_chain_pem = File("client.pem");
      options.tls.private_key_pem = File("client.key");
    }
    return options;
  }

  TempDir dir_;
};

TEST_F(TlsTest, ServesOverTlsAndRefusesPlaintext) {
  const std::string d = dir_.path();
  auto daemon = Daemon::Start(
      {"--tls-cert", d + "/server.pem", "--tls-key", d + "/server.key"});
  Client client(TlsOptionsFor(*daemon, /*with_cert=*/false));
  StatusOr<HealthStatus> health = client.CheckHealth();
  ASSERT_TRUE(health.ok()) << health.status().ToString();
  EXPECT_EQ(*health, HealthStatus::kServing);
  StatusOr<Session> session = Session::Open(client);
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  Dogpile dogpile(*session, "users", "42");
  EXPECT_EQ(dogpile.acquire([] { return std::string("v"); }), "v");
  Client plaintext(daemon->target());
  EXPECT_EQ(plaintext.CheckHealth().status().code(),
            StatusCode::kUnavailable);
}

TEST_F(TlsTest, MutualTlsNeedsAClientCertificate) {
  const std::string d = dir_.path();
  auto daemon = Daemon::Start({"--tls-cert", d + "/server.pem", "--tls-key",
                               d + "/server.key", "--tls-client-ca",
                               d + "/ca.pem"});
  Client with_cert(TlsOptionsFor(*daemon, /*with_cert=*/true));
  StatusOr<Session> session = Session::Open(with_cert);
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  EXPECT_EQ(session->state(), SessionState::kAlive);
  Client without_cert(TlsOptionsFor(*daemon, /*with_cert=*/false));
  EXPECT_FALSE(Session::Open(without_cert).ok());
}

}  // namespace
}  // namespace dogpiled
