#include "resp_loop.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "grpc_util.h"
#include "stats.h"

namespace dogpiled::bench {
namespace {

RespReply Convert(const redisReply* reply) {
  RespReply out;
  switch (reply->type) {
    case REDIS_REPLY_NIL:
      out.type = RespReply::kNil;
      break;
    case REDIS_REPLY_STATUS:
      out.type = RespReply::kStatus;
      out.str.assign(reply->str, reply->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = RespReply::kError;
      out.str.assign(reply->str, reply->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RespReply::kInteger;
      out.integer = reply->integer;
      break;
    case REDIS_REPLY_STRING:
      out.type = RespReply::kString;
      out.str.assign(reply->str, reply->len);
      break;
    default:
      out.type = RespReply::kArray;  // nothing here reads arrays
      break;
  }
  return out;
}

}  // namespace

struct RespLoop::Conn {
  int fd = -1;
  std::string out;  // bytes not yet written
  bool want_write = false;
  redisReader* reader = nullptr;
  std::deque<ReplyFn> pending;
};

RespLoop::RespLoop() : epoll_fd_(epoll_create1(EPOLL_CLOEXEC)) {
  if (epoll_fd_ < 0) {
    Die(std::string("epoll_create1: ") + std::strerror(errno));
  }
}

RespLoop::~RespLoop() {
  for (auto& conn : conns_) {
    redisReaderFree(conn->reader);
    close(conn->fd);
  }
  close(epoll_fd_);
}

int RespLoop::Connect(int port, int n) {
  const int first = connections();
  for (int i = 0; i < n; ++i) {
    auto conn = std::make_unique<Conn>();
    conn->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (conn->fd < 0 ||
        connect(conn->fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) !=
            0) {
      Die("connect to redis on port " + std::to_string(port) + ": " +
          std::strerror(errno));
    }
    const int one = 1;
    setsockopt(conn->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (fcntl(conn->fd, F_SETFL, O_NONBLOCK) != 0) {
      Die("fcntl O_NONBLOCK");
    }
    conn->reader = redisReaderCreate();
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u32 = static_cast<uint32_t>(conns_.size());
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, conn->fd, &event);
    conns_.push_back(std::move(conn));
  }
  return first;
}

void RespLoop::Command(int conn_index, const std::vector<std::string>& args,
                       ReplyFn on_reply) {
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  for (const std::string& arg : args) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  char* formatted = nullptr;
  const int length = redisFormatCommandArgv(
      &formatted, static_cast<int>(args.size()), argv.data(), lengths.data());
  if (length < 0) {
    Die("redisFormatCommandArgv failed");
  }
  Conn& conn = *conns_[conn_index];
  conn.out.append(formatted, static_cast<size_t>(length));
  redisFreeCommand(formatted);
  conn.pending.push_back(std::move(on_reply));
  ++commands_sent_;
  Flush(conn_index);
}

void RespLoop::Flush(int conn_index) {
  Conn& conn = *conns_[conn_index];
  while (!conn.out.empty()) {
    const ssize_t n = write(conn.fd, conn.out.data(), conn.out.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && errno != EAGAIN) {
      Die(std::string("write to redis: ") + std::strerror(errno));
    }
    if (n < 0) {
      break;
    }
    conn.out.erase(0, static_cast<size_t>(n));
  }
  const bool want_write = !conn.out.empty();
  if (want_write != conn.want_write) {
    conn.want_write = want_write;
    epoll_event event{};
    event.events = want_write ? (EPOLLIN | EPOLLOUT) : EPOLLIN;
    event.data.u32 = static_cast<uint32_t>(conn_index);
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, conn.fd, &event);
  }
}

void RespLoop::OnReadable(int conn_index) {
  Conn& conn = *conns_[conn_index];
  char buffer[16384];
  for (;;) {
    const ssize_t n = read(conn.fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n == 0 || (n < 0 && errno != EAGAIN)) {
      Die("redis closed a connection");
    }
    if (n < 0) {
      break;
    }
    redisReaderFeed(conn.reader, buffer, static_cast<size_t>(n));
    if (static_cast<size_t>(n) < sizeof buffer) {
      break;
    }
  }
  for (;;) {
    void* raw = nullptr;
    if (redisReaderGetReply(conn.reader, &raw) != REDIS_OK) {
      Die("bad reply from redis");
    }
    if (raw == nullptr) {
      break;
    }
    RespReply reply = Convert(static_cast<redisReply*>(raw));
    freeReplyObject(raw);
    if (conn.pending.empty()) {
      Die("reply from redis with no command waiting");
    }
    ReplyFn fn = std::move(conn.pending.front());
    conn.pending.pop_front();
    fn(reply);
  }
}

void RespLoop::After(int64_t delay_ns, std::function<void()> fn) {
  timers_.push(Timer{NowNs() + delay_ns, timer_seq_++, std::move(fn)});
}

bool RespLoop::Run(int64_t deadline_ns) {
  stopped_ = false;
  epoll_event events[256];
  while (!stopped_) {
    int64_t now = NowNs();
    while (!timers_.empty() && timers_.top().when_ns <= now && !stopped_) {
      std::function<void()> fn = timers_.top().fn;
      timers_.pop();
      fn();
      now = NowNs();
    }
    if (stopped_) {
      break;
    }
    if (now >= deadline_ns) {
      return false;
    }
    int64_t wait_ns = deadline_ns - now;
    if (!timers_.empty()) {
      wait_ns = std::min(wait_ns, timers_.top().when_ns - now);
    }
    timespec timeout{static_cast<time_t>(wait_ns / kNsPerSec),
                     static_cast<long>(wait_ns % kNsPerSec)};
    const int n = epoll_pwait2(epoll_fd_, events, 256, &timeout, nullptr);
    if (n < 0 && errno != EINTR) {
      Die(std::string("epoll_pwait2: ") + std::strerror(errno));
    }
    for (int i = 0; i < n; ++i) {
      const int conn_index = static_cast<int>(events[i].data.u32);
      if (events[i].events & EPOLLOUT) {
        Flush(conn_index);
      }
      if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        OnReadable(conn_index);
      }
    }
  }
  return true;
}

}  // namespace dogpiled::bench
