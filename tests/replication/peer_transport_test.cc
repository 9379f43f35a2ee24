// PeerTransport's check for peers that closed, on a real loopback socket:
// a connection dialled through it whose peer closes is reported once, and
// the next write to it fails through its callback (so libraft closes it and
// dials again) instead of vanishing, or failing at once, which libraft
// would never recover from.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <chrono>
#include <csignal>
#include <string>
#include <thread>
#include <vector>

#include "replication/peer_transport.h"

namespace dogpiled::replication {
namespace {

// A plain listening socket on a free loopback port: the peer.
struct Peer {
  int listener = -1;
  std::string address;

  Peer() {
    listener = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    EXPECT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), len), 0);
    EXPECT_EQ(listen(listener, 4), 0);
    EXPECT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len),
              0);
    address = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  }
  ~Peer() { close(listener); }
};

// Closes a dialled stream as libraft would (it allocated the handle).
void CloseStream(uv_stream_t* stream) {
  uv_close(reinterpret_cast<uv_handle_t*>(stream),
           [](uv_handle_t* h) { raft_free(h); });
}

struct PeerTransportTest : ::testing::Test {
  uv_loop_t loop{};
  PeerTransport transport{};
  std::vector<raft_id> closed;

  void SetUp() override {
    signal(SIGPIPE, SIG_IGN);  // as RaftNode does: a write may meet a close
    ASSERT_EQ(uv_loop_init(&loop), 0);
    ASSERT_EQ(PeerTcpInit(&transport, &loop), 0);
    transport.context = this;
    transport.peer_closed = [](void* self, raft_id id) {
      static_cast<PeerTransportTest*>(self)->closed.push_back(id);
    };
    ASSERT_EQ(transport.base.init(&transport.base, 1, "127.0.0.1:1"), 0);
  }
  void TearDown() override {
    transport.base.close(&transport.base, [](raft_uv_transport*) {});
    uv_run(&loop, UV_RUN_DEFAULT);
    PeerTcpClose(&transport);
    uv_loop_close(&loop);
  }

  // Dials `peer` as member 2 and accepts on its side: the stream libraft
  // would get, and the peer's end.
  std::pair<uv_stream_t*, int> Dial(const Peer& peer) {
    struct Result {
      uv_stream_t* stream = nullptr;
      int status = -1;
    } result;
    raft_uv_connect req{};
    req.data = &result;
    EXPECT_EQ(transport.base.connect(
                  &transport.base, &req, 2, peer.address.c_str(),
                  [](raft_uv_connect* r, uv_stream_t* s, int status) {
                    auto* out = static_cast<Result*>(r->data);
                    out->stream = s;
                    out->status = status;
                  }),
              0);
    while (result.status == -1 && uv_run(&loop, UV_RUN_ONCE) != 0) {
    }
    EXPECT_EQ(result.status, 0);
    return {result.stream, accept(peer.listener, nullptr, nullptr)};
  }

  // Checks until something is reported (a FIN crosses loopback at once;
  // the bound only keeps a broken build from hanging).
  void CheckUntilReported() {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (closed.empty() && std::chrono::steady_clock::now() < deadline) {
      PeerTcpCheck(&transport);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
};

TEST_F(PeerTransportTest, AnOpenConnectionIsNotReported) {
  Peer peer;
  auto [stream, far_end] = Dial(peer);
  ASSERT_NE(stream, nullptr);
  ASSERT_GE(far_end, 0);
  PeerTcpCheck(&transport);
  PeerTcpCheck(&transport);
  EXPECT_TRUE(closed.empty());
  close(far_end);
  CloseStream(stream);
}

TEST_F(PeerTransportTest, APeerThatClosedIsReportedOnceAndTheNextWriteFailsLater) {
  Peer peer;
  auto [stream, far_end] = Dial(peer);
  ASSERT_NE(stream, nullptr);
  close(far_end);  // the peer restarts: its end of the connection is gone
  CheckUntilReported();
  EXPECT_EQ(closed, std::vector<raft_id>{2});
  PeerTcpCheck(&transport);
  EXPECT_EQ(closed.size(), 1u) << "a closed connection is reported once";

  // libraft treats only a write that fails in its callback as a broken
  // connection; one refused at once would leave it writing into the void.
  struct Written {
    int status = 1;
  } written;
  char byte = 'x';
  uv_buf_t buf = uv_buf_init(&byte, 1);
  uv_write_t write{};
  write.data = &written;
  ASSERT_EQ(uv_write(&write, stream, &buf, 1,
                     [](uv_write_t* w, int status) {
                       static_cast<Written*>(w->data)->status = status;
                     }),
            0);
  while (written.status == 1 && uv_run(&loop, UV_RUN_ONCE) != 0) {
  }
  EXPECT_EQ(written.status, UV_EPIPE);
  CloseStream(stream);
}

TEST_F(PeerTransportTest, AConnectionLibraftClosedIsForgotten) {
  Peer peer;
  auto [stream, far_end] = Dial(peer);
  ASSERT_NE(stream, nullptr);
  CloseStream(stream);
  uv_run(&loop, UV_RUN_NOWAIT);
  close(far_end);
  PeerTcpCheck(&transport);
  EXPECT_TRUE(closed.empty()) << "only a connection libraft holds is reported";
}

}  // namespace
}  // namespace dogpiled::replication
