#include "grpc_util.h"

#include <cstdio>
#include <cstdlib>

namespace dogpiled::bench {

std::vector<std::shared_ptr<grpc::Channel>> MakeChannels(
    const std::string& target, int n) {
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < n; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("dogpiled.bench.connection", i);
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    channels.push_back(grpc::CreateCustomChannel(
        target, grpc::InsecureChannelCredentials(), args));
    if (!channels.back()->WaitForConnected(std::chrono::system_clock::now() +
                                           std::chrono::seconds(10))) {
      Die("cannot connect to " + target);
    }
  }
  return channels;
}

void Die(const std::string& message) {
  std::fprintf(stderr, "dogpiled_bench: %s\n", message.c_str());
  std::exit(2);
}

}  // namespace dogpiled::bench
