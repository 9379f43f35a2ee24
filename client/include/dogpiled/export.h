// Symbol visibility for the dogpiled client library. The library is built
// with hidden visibility so the gRPC and protobuf code linked into it never
// clashes with a consumer's own copies; only what is marked here is public.
#pragma once

#if defined(_WIN32)
#define DOGPILED_EXPORT
#else
#define DOGPILED_EXPORT __attribute__((visibility("default")))
#endif
