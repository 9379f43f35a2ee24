// libraft's TCP transport, with two repairs for its peer connections.
//
// - TCP_NODELAY on every stream. libraft 0.22 never turns Nagle's
//   algorithm off, so a small AppendEntries or its answer could wait for
//   the ACK of the previous one (up to the 40 ms delayed-ACK timer).
// - Noticing a peer that closed. libraft never reads the connections it
//   dials, so it learns that a peer went away only when a write to it
//   fails, and that message is lost. After a member restarts, the first
//   message each other member sends it is lost: in an election that is a
//   vote, and costs another election timeout. PeerTcpCheck looks at each
//   dialled socket (a peek, never a read: libuv would mark the stream
//   unwritable on an error, and libraft never redials one whose writes
//   fail at once) and tells `peer_closed` of each closed one, so that a
//   harmless message can take the loss (RaftNode sends one).
//
// Loop thread only, like every raft_* call.
#pragma once

#include "replication/raft.h"

namespace dogpiled::replication {

struct PeerTransport {
  // First, so raft's transport pointer is this struct's (standard layout).
  raft_uv_transport base{};
  int (*tcp_listen)(raft_uv_transport*, raft_uv_accept_cb) = nullptr;
  int (*tcp_connect)(raft_uv_transport*, raft_uv_connect*, raft_id,
                     const char*, raft_uv_connect_cb) = nullptr;
  raft_uv_accept_cb accepted = nullptr;  // raft's, given to listen
  // Called from PeerTcpCheck for each peer that closed a connection this
  // member dialled.
  void (*peer_closed)(void* context, raft_id id) = nullptr;
  void* context = nullptr;
  void* dialled = nullptr;  // PeerTcpInit's table of dialled sockets
};

// raft_uv_tcp_init, then the wrapping; close with PeerTcpClose.
int PeerTcpInit(PeerTransport* t, uv_loop_t* loop);
void PeerTcpClose(PeerTransport* t);
// Looks for dialled connections their peers closed: each is shut for
// writing (libraft's next write fails and redials) and reported.
void PeerTcpCheck(PeerTransport* t);

}  // namespace dogpiled::replication
