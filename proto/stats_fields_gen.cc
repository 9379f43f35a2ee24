// Writes dogpiled/v1/stats_fields.inc from dogpiled.v1.StatsResponse's
// descriptor: the Stats fields as an X-macro, so the core, the service, the
// metrics, the C++ SDK and dogpilectl iterate the proto's own list instead
// of repeating it. X(name, number): numbers below 10 are gauges, the rest
// counters (as admin.proto says).
#include <iostream>

#include "dogpiled/v1/admin.pb.h"

int main() {
  const auto* d = dogpiled::v1::StatsResponse::descriptor();
  std::cout << "// Generated from dogpiled.v1.StatsResponse by "
               "proto/stats_fields_gen.cc. Do not edit.\n"
               "#define DOGPILED_STATS_FIELDS(X)";
  for (int i = 0; i < d->field_count(); ++i) {
    std::cout << " \\\n  X(" << d->field(i)->name() << ", "
              << d->field(i)->number() << ")";
  }
  std::cout << "\n";
  return 0;
}
