// libraft's TCP transport with TCP_NODELAY on every peer connection.
//
// libraft 0.22 never turns Nagle's algorithm off, so a small AppendEntries
// or its answer can wait for the ACK of the previous one (up to the 40 ms
// delayed-ACK timer): a commit's round trip then costs milliseconds on an
// idle loopback. This wraps raft_uv_tcp's listen and connect and sets
// TCP_NODELAY on each stream before handing it to raft.
//
// Loop thread only, like every raft_* call.
#pragma once

#include "replication/raft.h"

namespace dogpiled::replication {

struct NoDelayTransport {
  // First, so raft's transport pointer is this struct's (standard layout).
  raft_uv_transport base{};
  int (*tcp_listen)(raft_uv_transport*, raft_uv_accept_cb) = nullptr;
  int (*tcp_connect)(raft_uv_transport*, raft_uv_connect*, raft_id,
                     const char*, raft_uv_connect_cb) = nullptr;
  raft_uv_accept_cb accepted = nullptr;  // raft's, given to listen
};

// raft_uv_tcp_init, then the wrapping; close with raft_uv_tcp_close(&t->base).
int NoDelayTcpInit(NoDelayTransport* t, uv_loop_t* loop);

}  // namespace dogpiled::replication
