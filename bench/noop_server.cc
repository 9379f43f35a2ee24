// bench_noop_server: the floor for every dogpiled figure. A callback-API
// gRPC server, built with the same gRPC and the same builder defaults as
// dogpiled, that answers Ping at once and parks Park calls until Release.
// Whatever dogpiled costs above this server is dogpiled's own doing.
//
// Usage: bench_noop_server --listen 127.0.0.1:0 --port-file FILE
// SIGTERM or SIGINT stops it.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "noop.grpc.pb.h"

namespace dogpiled::bench {
namespace {

// Thread-safe: gRPC calls the handlers from its own threads.
class NoopService final : public Noop::CallbackService {
 public:
  grpc::ServerUnaryReactor* Ping(grpc::CallbackServerContext* ctx,
                                 const PingRequest* request,
                                 PingResponse* response) override {
    if (request->payload_bytes() > 0) {  // one copy, as dogpiled's answer
      response->set_payload(std::string(request->payload_bytes(), 'v'));
    }
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  // A default reactor stays alive until Finish even if the client cancels,
  // so holding the pointer until Release is safe.
  grpc::ServerUnaryReactor* Park(grpc::CallbackServerContext* ctx,
                                 const ParkRequest* request,
                                 ParkResponse* response) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    std::lock_guard<std::mutex> lock(mutex_);
    parked_.push_back({reactor, response, request->payload_bytes()});
    return reactor;
  }

  // Same shape as dogpiled's Publish: take the line under the lock, answer
  // it outside, then answer the caller.
  grpc::ServerUnaryReactor* Release(grpc::CallbackServerContext* ctx,
                                    const ReleaseRequest* /*request*/,
                                    ReleaseResponse* response) override {
    std::vector<ParkedCall> line;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      line.swap(parked_);
    }
    for (const ParkedCall& parked : line) {
      if (parked.payload_bytes > 0) {
        parked.response->set_payload(std::string(parked.payload_bytes, 'v'));
      }
      parked.reactor->Finish(grpc::Status::OK);
    }
    response->set_released(line.size());
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* Parked(grpc::CallbackServerContext* ctx,
                                   const ParkedRequest* /*request*/,
                                   ParkedResponse* response) override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      response->set_parked(parked_.size());
    }
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  // Answers whatever is still parked, so shutdown does not wait on it.
  void ReleaseAll() {
    std::vector<ParkedCall> line;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      line.swap(parked_);
    }
    for (const ParkedCall& parked : line) {
      parked.reactor->Finish(
          grpc::Status(grpc::StatusCode::UNAVAILABLE, "stopping"));
    }
  }

 private:
  struct ParkedCall {
    grpc::ServerUnaryReactor* reactor;
    ParkResponse* response;  // gRPC's, alive until Finish
    uint32_t payload_bytes;
  };
  std::mutex mutex_;
  std::vector<ParkedCall> parked_;
};

}  // namespace
}  // namespace dogpiled::bench

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:0";
  std::string port_file;
  CLI::App app{"bench_noop_server: a gRPC server that does nothing, fast"};
  app.add_option("--listen", listen, "HOST:PORT (port 0 picks a free port)");
  app.add_option("--port-file", port_file, "Write the bound port here");
  CLI11_PARSE(app, argc, argv);

  // Signals are taken by sigwait below, never by a gRPC thread.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  dogpiled::bench::NoopService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::fprintf(stderr, "bench_noop_server: cannot listen on %s\n",
                 listen.c_str());
    return 1;
  }
  if (!port_file.empty()) {
    std::ofstream(port_file) << port << "\n";
  }

  int signal = 0;
  sigwait(&stop_signals, &signal);
  service.ReleaseAll();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  server->Wait();
  return 0;
}
