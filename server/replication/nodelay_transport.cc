#include "replication/nodelay_transport.h"

#include <uv.h>

#include <cstddef>
#include <type_traits>

namespace dogpiled::replication {
namespace {

static_assert(std::is_standard_layout_v<NoDelayTransport> &&
              offsetof(NoDelayTransport, base) == 0);

NoDelayTransport* Outer(raft_uv_transport* t) {
  return reinterpret_cast<NoDelayTransport*>(t);
}

void NoDelay(uv_stream_s* stream) {
  if (stream != nullptr && stream->type == UV_TCP) {
    // Best effort: a failure leaves the stream as libraft made it.
    uv_tcp_nodelay(reinterpret_cast<uv_tcp_t*>(stream), 1);
  }
}

void OnAccepted(raft_uv_transport* t, raft_id id, const char* address,
                uv_stream_s* stream) {
  NoDelay(stream);
  Outer(t)->accepted(t, id, address, stream);
}

int Listen(raft_uv_transport* t, raft_uv_accept_cb cb) {
  Outer(t)->accepted = cb;
  return Outer(t)->tcp_listen(t, OnAccepted);
}

// One connect in flight: raft's request, answered through ours.
struct Connecting {
  raft_uv_connect req{};
  raft_uv_connect* raft_req;
  raft_uv_connect_cb raft_cb;
};

void OnConnected(raft_uv_connect* req, uv_stream_s* stream, int status) {
  auto* c = static_cast<Connecting*>(req->data);
  if (status == 0) {
    NoDelay(stream);
  }
  raft_uv_connect* raft_req = c->raft_req;
  raft_uv_connect_cb raft_cb = c->raft_cb;
  delete c;
  raft_cb(raft_req, stream, status);
}

int Connect(raft_uv_transport* t, raft_uv_connect* req, raft_id id,
            const char* address, raft_uv_connect_cb cb) {
  auto* c = new Connecting{{}, req, cb};
  c->req.data = c;
  const int rv = Outer(t)->tcp_connect(t, &c->req, id, address, OnConnected);
  if (rv != 0) {
    delete c;  // no callback follows a refused start
  }
  return rv;
}

}  // namespace

int NoDelayTcpInit(NoDelayTransport* t, uv_loop_t* loop) {
  t->base.version = 1;  // the caller fills the version in
  if (int rv = raft_uv_tcp_init(&t->base, loop); rv != 0) {
    return rv;
  }
  t->tcp_listen = t->base.listen;
  t->tcp_connect = t->base.connect;
  t->base.listen = Listen;
  t->base.connect = Connect;
  return 0;
}

}  // namespace dogpiled::replication
