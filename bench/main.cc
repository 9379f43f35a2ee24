// dogpiled_bench: runs one benchmark scenario against one system and prints
// its figures as JSON on stdout. bench/run.py starts the servers and calls
// this once per (scenario, system); docs/benchmarks.md shows the results.
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "scenarios.h"
#include "stats.h"

int main(int argc, char** argv) {
  using dogpiled::bench::Options;
  Options options;
  std::string scenario;
  CLI::App app{"dogpiled_bench: one benchmark scenario, figures as JSON"};
  app.add_option("scenario", scenario,
                 "ceiling, fresh, election, handoff, stampede or parked")
      ->required();
  app.add_option("--target", options.target,
                 "gRPC server under test, HOST:PORT (dogpiled or noop)");
  app.add_option("--etcd", options.etcd, "etcd client address, HOST:PORT");
  app.add_option("--redis-port", options.redis_port,
                 "redis-server port on 127.0.0.1");
  app.add_option("--system", options.system, "which system to drive");
  app.add_option("--connections", options.connections, "gRPC connections");
  app.add_option("--concurrency", options.concurrency,
                 "calls in flight (throughput scenarios)");
  app.add_option("--seconds", options.seconds, "measured window");
  app.add_option("--warmup-seconds", options.warmup_seconds,
                 "unmeasured run before the window");
  app.add_option("--clients", options.clients,
                 "contenders, stampede clients or parked waiters");
  app.add_option("--keys", options.keys, "stored keys, one figure each")
      ->delimiter(',');
  app.add_option("--poll-ms", options.poll_ms, "redis lock poll interval");
  app.add_option("--creator-ms", options.creator_ms, "stampede creator time");
  app.add_option("--arrival-ms", options.arrival_ms,
                 "stampede clients arrive evenly over this");
  app.add_option("--server-pid", options.server_pid,
                 "process to sample for RSS and threads");
  app.add_option("--value-bytes", options.value_bytes, "size of values");
  app.add_option("--seed", options.seed, "random seed");
  CLI11_PARSE(app, argc, argv);

  // A stampede holds one socket per simulated client.
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }

  nlohmann::json result;
  if (scenario == "ceiling") {
    result = dogpiled::bench::RunCeiling(options);
  } else if (scenario == "fresh") {
    result = dogpiled::bench::RunFresh(options);
  } else if (scenario == "election") {
    result = dogpiled::bench::RunElection(options);
  } else if (scenario == "handoff") {
    result = dogpiled::bench::RunHandoff(options);
  } else if (scenario == "stampede") {
    result = dogpiled::bench::RunStampede(options);
  } else if (scenario == "parked") {
    result = dogpiled::bench::RunParked(options);
  } else {
    std::fprintf(stderr, "dogpiled_bench: unknown scenario %s\n",
                 scenario.c_str());
    return 2;
  }
  result["scenario"] = scenario;
  result["system"] = options.system;
  std::cout << result.dump() << std::endl;
  // Skips static destructors, which can race gRPC's own threads at exit
  // (grpc/grpc#37858); the figures are already out.
  std::_Exit(0);
}
