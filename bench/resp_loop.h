// Many Redis clients on one thread: an epoll loop that speaks RESP (through
// hiredis's reply parser) over many loopback connections, with timers for
// poll intervals. One connection is one simulated client, as in a fleet
// where every process has its own connection; no thread per client.
//
// Not thread-safe: construct, connect and run on one thread; callbacks run
// on that thread, inside Run.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <queue>
#include <string>
#include <vector>

namespace dogpiled::bench {

struct RespReply {
  enum Type { kNil, kStatus, kError, kInteger, kString, kArray, kBroken };
  Type type = kNil;
  std::string str;  // status, error or bulk string
  int64_t integer = 0;
};

class RespLoop {
 public:
  using ReplyFn = std::function<void(const RespReply&)>;

  RespLoop();
  ~RespLoop();
  RespLoop(const RespLoop&) = delete;
  RespLoop& operator=(const RespLoop&) = delete;

  // Opens `n` more connections to 127.0.0.1:port; returns their first
  // index. Exits the process if one cannot connect.
  int Connect(int port, int n);
  int connections() const { return static_cast<int>(conns_.size()); }

  // Sends a command on connection `conn`; `on_reply` gets its reply.
  // Replies come back in order per connection.
  void Command(int conn, const std::vector<std::string>& args,
               ReplyFn on_reply);
  // Runs `fn` on the loop after `delay_ns`.
  void After(int64_t delay_ns, std::function<void()> fn);

  // Runs until Stop() or until the monotonic deadline; false on deadline.
  bool Run(int64_t deadline_ns);
  void Stop() { stopped_ = true; }

  // Commands sent since construction, over all connections.
  int64_t commands_sent() const { return commands_sent_; }

 private:
  struct Conn;
  struct Timer {
    int64_t when_ns;
    uint64_t seq;
    std::function<void()> fn;
    bool operator>(const Timer& other) const {
      return when_ns != other.when_ns ? when_ns > other.when_ns
                                      : seq > other.seq;
    }
  };

  void Flush(int conn);
  void OnReadable(int conn);

  int epoll_fd_ = -1;
  bool stopped_ = false;
  uint64_t timer_seq_ = 0;
  int64_t commands_sent_ = 0;
  std::vector<std::unique_ptr<Conn>> conns_;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers_;
};

}  // namespace dogpiled::bench
