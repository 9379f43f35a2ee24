// libraft's headers, for C++: they declare no C linkage of their own, and
// raft.h checks its struct layouts with static asserts that define types
// inside sizeof (valid C, not C++). The library was compiled with those
// checks, so C++ skips them; nothing else changes (the layouts are the
// library's).
#pragma once

#pragma push_macro("static_assert")
#undef static_assert
#define static_assert(...)
extern "C" {
#include <raft.h>          // IWYU pragma: export
#include <raft/fixture.h>  // IWYU pragma: export
#include <raft/uv.h>       // IWYU pragma: export
}
#pragma pop_macro("static_assert")
