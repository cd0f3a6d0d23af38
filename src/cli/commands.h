// wardenctl's subcommands. Each returns the process exit code (cli_util.h)
// and prints at most one line on stderr for an error.
#pragma once

#include <atomic>
#include <csignal>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "src/cli/cli_util.h"
#include "src/client/client.h"

namespace warden::cli {

struct Globals {
  client::ClientOptions client;
  bool json = false;  // -w json
};

// Prints "wardenctl: <line>" on stderr.
void Fail(const std::string& line);
// Prints the error and returns its exit code.
int FailWith(const client::Status& s);

// Delivers SIGINT, SIGTERM, SIGHUP and SIGQUIT to a handler on a thread of
// its own (sigwait), so that the handler may do anything (cancel a gRPC
// call, signal a child). Construct it before any other thread starts: the
// signals are blocked in the constructing thread and so in every thread it
// starts later. A child process must unblock them (UnblockInChild).
class SignalThread {
 public:
  explicit SignalThread(std::function<void(int)> handler);
  ~SignalThread();
  // The first signal received, or 0.
  int received() const { return received_.load(); }
  // In a forked child, before exec: the default mask and dispositions.
  static void UnblockInChild();

 private:
  std::function<void(int)> handler_;
  std::atomic<int> received_{0};
  std::thread thread_;
};

struct LockArgs {
  std::string name;
  bool shared = false;
  std::string ttl;   // duration, "" = none
  std::string wait;  // duration, "" = no deadline
  int32_t priority = 0;
  std::string session_ttl = "10s";
  bool kill_on_loss = true;
  std::string value;
  std::vector<std::string> command;  // empty: hold until a signal
};
int RunLock(const Globals& g, const LockArgs& a);
int RunLockInspect(const Globals& g, const std::string& name);
int RunLockList(const Globals& g, const std::string& prefix);
int RunLockWatch(const Globals& g, const std::string& prefix, int64_t count);

int RunSessionGrant(const Globals& g, const std::string& ttl);
int RunSessionKeepAlive(const Globals& g, int64_t id);
int RunSessionRevoke(const Globals& g, int64_t id);
int RunSessionTtl(const Globals& g, int64_t id);

int RunElect(const Globals& g, const std::string& name, const std::string& value);
int RunElectListen(const Globals& g, const std::string& name);

int RunPut(const Globals& g, const std::string& key, const std::string& value);
int RunGet(const Globals& g, const std::string& key);

}  // namespace warden::cli
