// slow_fsync: an LD_PRELOAD shim for the chaos harness's `disk slow` fault.
//
// Before each fsync/fdatasync of the process it reads a number of
// milliseconds from the file named by WARDEN_CHAOS_FSYNC_DELAY_FILE and sleeps
// that long, then calls the real function. The harness rewrites the file to
// start and end the fault. No file, or 0: no delay. Tests only.
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace {

void ChaosDelay() {
  const char* path = std::getenv("WARDEN_CHAOS_FSYNC_DELAY_FILE");
  if (path == nullptr) return;
  std::FILE* f = std::fopen(path, "r");
  if (f == nullptr) return;
  long ms = 0;
  if (std::fscanf(f, "%ld", &ms) != 1) ms = 0;
  std::fclose(f);
  if (ms <= 0 || ms > 60000) return;
  timespec ts{ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, nullptr);
}

using SyncFn = int (*)(int);

SyncFn Real(const char* name) { return reinterpret_cast<SyncFn>(dlsym(RTLD_NEXT, name)); }

}  // namespace

extern "C" int fdatasync(int fd) {
  static SyncFn real = Real("fdatasync");
  ChaosDelay();
  return real(fd);
}

extern "C" int fsync(int fd) {
  static SyncFn real = Real("fsync");
  ChaosDelay();
  return real(fd);
}
