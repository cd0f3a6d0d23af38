// Assertions that stay on in every build, Release included. A failed check is a
// programmer error (a broken invariant), never an operating error: operating
// errors travel as Status. The process prints where and why, then aborts.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace warden::internal {
[[noreturn]] inline void CheckFailed(const char* file, int line, const char* expr,
                                     const char* msg) {
  std::fprintf(stderr, "%s:%d: check failed: %s%s%s\n", file, line, expr, msg[0] ? ": " : "", msg);
  std::fflush(stderr);
  std::abort();
}
}  // namespace warden::internal

#define WARDEN_CHECK(cond)                                            \
  do {                                                                \
    if (!(cond)) [[unlikely]]                                         \
      ::warden::internal::CheckFailed(__FILE__, __LINE__, #cond, ""); \
  } while (0)

#define WARDEN_CHECK_MSG(cond, msg)                                      \
  do {                                                                   \
    if (!(cond)) [[unlikely]]                                            \
      ::warden::internal::CheckFailed(__FILE__, __LINE__, #cond, (msg)); \
  } while (0)
