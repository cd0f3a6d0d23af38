// SimLockClient: a simulated client of the native locks (docs/locks.md).
//
// It owns a session (a lease, granted like SimClient's and kept alive by
// KeepAlive on the node it believes leads, every third of the TTL) and runs
// lock cycles, one at a time:
//
//   acquire  a lock out of a few paths: mostly exclusive, some shared; some
//            with a priority; some try-locks (wait 0), some with a wait
//            deadline, the rest without; some with a hold TTL.
//   hold     a while; sometimes re-acquire it (reentrant: same token).
//   write    a guarded put of its token into the lock's register key.
//   release  once per acquire, to count 0.
//
// Every request carries a request id, and an attempt that times out or is
// refused is sent again with the same id (to the hinted leader or another
// member): the lock table applies it once and answers a retry with the first
// answer. An acquire that queues is answered QUEUED, and its final answer
// comes later from the member that proposed it (SimNode). A client that
// hears nothing for a while asks again with the same request id (the table
// answers QUEUED while it waits, and the final answer once known), or, for a
// wait without a deadline, sometimes gives up with a cancel. The client never
// abandons a request of a live session: whatever it was granted, it releases.
//
// Some sessions die: the client stops keeping the session alive but carries
// on as if nothing happened (a zombie: its hold expires and later writes with
// its token must be refused), or it crashes outright, forgetting its hold or
// wait, and comes back later with a new session. A SESSION_ENDED answer or a
// keep-alive that finds no lease ends the session for the client too.
//
// Nothing goes into the linearizability history: the lock check
// (sim/lock_check.h) checks the applied entries instead.
//
// Thread safety: none.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "sim/client.h"
#include "sim/world.h"
#include "src/base/ids.h"

namespace warden::sim {

struct LockClientOptions {
  int locks = 2;  // paths /lock/0 ... /lock/<locks-1>
  TimeUs timeout_us = 500 * kUsPerMs;
  TimeUs think_max_us = 200 * kUsPerMs;
  TimeUs hold_max_us = 80 * kUsPerMs;
  double shared_ratio = 0.25;
  double priority_ratio = 0.2;
  double try_ratio = 0.2;       // wait 0
  double deadline_ratio = 0.3;  // a wait deadline; the rest wait without one
  double hold_ttl_ratio = 0.2;
  double reacquire_ratio = 0.1;
  double cancel_ratio = 0.5;   // an impatient waiter without a deadline cancels
  double zombie_ratio = 0.04;  // per cycle: stop keeping the session alive
  double crash_ratio = 0.03;   // per hold or wait: crash and forget it
};

class SimLockClient {
 public:
  using SendFn = SimClient::SendFn;
  using GrantFn = SimClient::GrantFn;

  SimLockClient(World* world, Rng rng, uint64_t id, std::vector<NodeId> nodes,
                const LockClientOptions& options, SendFn send, GrantFn grant);

  void set_members(std::function<std::vector<NodeId>()> members) { members_ = std::move(members); }

  void Start();
  void OnResponse(const ClientResponse& r);
  void Stop() { stopped_ = true; }

  // Liveness: lock cycles begun at or after `since` that came to an end
  // (released, or refused). From then on no session dies on purpose.
  void set_liveness_epoch(TimeUs since) {
    epoch_us_ = since;
    ok_since_epoch_ = 0;
    calm_ = true;
  }
  uint64_t ok_since_epoch() const { return ok_since_epoch_; }
  uint64_t id() const { return id_; }

 private:
  enum class Phase : uint8_t {
    kIdle,       // thinking before the next cycle
    kSession,    // granting a session
    kAcquire,    // an acquire is in flight
    kWaiting,    // queued: waiting for the final answer
    kCancel,     // a cancel of the queued acquire is in flight
    kHolding,    // holding, before the write
    kReacquire,  // a re-acquire is in flight
    kWrite,      // the guarded write is in flight
    kRelease,    // a release is in flight
    kDown,       // crashed
  };

  // Moves to `p`: timers of the previous step and the request in flight are
  // no longer awaited.
  void SetPhase(Phase p);
  // Sends `req` (a new attempt with a fresh transport seq) to the believed
  // leader and arms its timeout.
  void Send(ClientRequest req);
  void OnTimeout(uint64_t seq);
  // The open request again, after a refusal or a timeout: the same request
  // id (a session grant gets a fresh lease id instead).
  void Retry(TimeUs delay_us);
  void PickTarget(NodeId hint);
  NodeId AnyMember();

  void Think();
  void BeginCycle();
  void GrantSession();
  void SendAcquire();
  void OnAcquireAnswer(const state::LockAnswer& a);
  void ActOnFinal();
  void OnWaitTimeout();
  void OnCancelAnswer(const state::LockAnswer& a);
  void Hold();
  void OnReacquireAnswer(const state::LockAnswer& a);
  void Write();
  void Release();
  void OnReleaseAnswer(const state::LockAnswer& a);
  void EndCycle(bool counted);
  void LoseSession(const char* why);
  void Crash();
  void KeepAlive(int64_t session);
  void SendKeepAlive();
  void OnKeepAliveAnswer(const ClientResponse& r);

  ClientRequest NewRequest(ClientRequest::Kind kind) const;
  std::string Who() const { return Format("c%llu", U(id_)); }

  World* world_;
  Rng rng_;
  uint64_t id_;
  std::vector<NodeId> nodes_;
  std::function<std::vector<NodeId>()> members_;
  LockClientOptions options_;
  SendFn send_;
  GrantFn grant_;
  std::string owner_;

  bool stopped_ = false;
  bool calm_ = false;  // after the heal: no more zombies and crashes
  NodeId target_;
  NodeId sent_to_;
  uint64_t next_seq_ = 1;
  uint64_t next_request_id_ = 1;  // unique per client, so per session too
  uint64_t next_lease_ = 1;
  Phase phase_ = Phase::kIdle;
  uint64_t turn_ = 0;  // bumped by SetPhase; timers of older turns do nothing
  bool open_ = false;  // req_ is in flight
  ClientRequest req_;

  int64_t session_ = 0;
  int64_t ttl_seconds_ = 0;
  bool zombie_ = false;                // the session is no longer kept alive
  uint64_t keepalive_seq_ = 0;         // the keep-alive in flight, 0 if none
  bool keepalive_redirected_ = false;  // sent again to a hint this period

  state::LockCommand acquire_;  // the acquire of this cycle
  std::optional<state::LockAnswer> acquire_final_;
  uint64_t token_ = 0;  // the hold's token, while held
  TimeUs cycle_us_ = 0;

  TimeUs epoch_us_ = 0;
  uint64_t ok_since_epoch_ = 0;
};

}  // namespace warden::sim
