#include "replication/peer_transport.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <uv.h>

#include <cerrno>
#include <cstddef>
#include <optional>
#include <type_traits>
#include <vector>

namespace dogpiled::replication {
namespace {

static_assert(std::is_standard_layout_v<PeerTransport> &&
              offsetof(PeerTransport, base) == 0);

PeerTransport* Outer(raft_uv_transport* t) {
  return reinterpret_cast<PeerTransport*>(t);
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

// A socket this member dialled, as libraft holds it. The inode tells the
// socket apart from a later one at the same descriptor, once libraft has
// closed it (libraft says nothing when it does).
struct Dialled {
  int fd;
  ino_t inode;
  raft_id id;
};
using DialledTable = std::vector<Dialled>;

DialledTable& Table(PeerTransport* t) {
  return *static_cast<DialledTable*>(t->dialled);
}

std::optional<ino_t> InodeOf(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) {
    return std::nullopt;
  }
  return st.st_ino;
}

// One connect in flight: raft's request, answered through ours.
struct Connecting {
  raft_uv_connect req{};
  raft_uv_connect* raft_req;
  raft_uv_connect_cb raft_cb;
  PeerTransport* transport;
  raft_id id;
};

void OnConnected(raft_uv_connect* req, uv_stream_s* stream, int status) {
  auto* c = static_cast<Connecting*>(req->data);
  uv_os_fd_t fd;
  if (status == 0 && stream != nullptr) {
    NoDelay(stream);
    if (uv_fileno(reinterpret_cast<uv_handle_t*>(stream), &fd) == 0) {
      if (std::optional<ino_t> inode = InodeOf(fd)) {
        DialledTable& table = Table(c->transport);
        std::erase_if(table, [&](const Dialled& d) { return d.id == c->id; });
        table.push_back({fd, *inode, c->id});
      }
    }
  }
  raft_uv_connect* raft_req = c->raft_req;
  raft_uv_connect_cb raft_cb = c->raft_cb;
  delete c;
  raft_cb(raft_req, stream, status);
}

int Connect(raft_uv_transport* t, raft_uv_connect* req, raft_id id,
            const char* address, raft_uv_connect_cb cb) {
  auto* c = new Connecting{{}, req, cb, Outer(t), id};
  c->req.data = c;
  const int rv = Outer(t)->tcp_connect(t, &c->req, id, address, OnConnected);
  if (rv != 0) {
    delete c;  // no callback follows a refused start
  }
  return rv;
}

}  // namespace

int PeerTcpInit(PeerTransport* t, uv_loop_t* loop) {
  t->base.version = 1;  // the caller fills the version in
  if (int rv = raft_uv_tcp_init(&t->base, loop); rv != 0) {
    return rv;
  }
  t->tcp_listen = t->base.listen;
  t->tcp_connect = t->base.connect;
  t->base.listen = Listen;
  t->base.connect = Connect;
  t->dialled = new DialledTable;
  return 0;
}

void PeerTcpClose(PeerTransport* t) {
  delete static_cast<DialledTable*>(t->dialled);
  t->dialled = nullptr;
  raft_uv_tcp_close(&t->base);
}

void PeerTcpCheck(PeerTransport* t) {
  std::vector<raft_id> closed;
  std::erase_if(Table(t), [&closed](const Dialled& d) {
    if (InodeOf(d.fd) != d.inode) {
      return true;  // libraft closed it
    }
    char byte;
    const ssize_t n = recv(d.fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
                            errno == EINTR))) {
      return false;  // open (a peer never writes here)
    }
    // Closed or reset: make libraft's next write fail (EPIPE), so that it
    // closes the stream and dials again.
    shutdown(d.fd, SHUT_WR);
    closed.push_back(d.id);
    return true;
  });
  for (raft_id id : closed) {
    if (t->peer_closed != nullptr) {
      t->peer_closed(t->context, id);
    }
  }
}

}  // namespace dogpiled::replication
