// SimClient: a simulated client of the replicated key-value store.
//
// A client runs one operation at a time against a small set of keys: a read
// (a read barrier, then a range read of the node's state), a put, a delete,
// or a compare-and-set (a transaction comparing the value, or the version with
// 0 for "absent"). These go into the history for the linearizability checker.
// Some operations work with leases instead, on keys of the client's own that
// stay out of the history (expiry deletes them at times no client chose; the
// lease-safety check covers them): grant a lease, put keys attached to it,
// keep it alive, revoke it, or forget it and let it expire. It sends each
// attempt to the node it believes leads; a refusal ("not leader": the request
// definitely had no effect) makes it try the hinted leader or another node,
// and a timeout leaves the attempt indeterminate. Every attempt is its own
// operation in the history (a fresh seq, never reused), so the history records
// exactly what the client saw: ok with a value, a definite failure (discarded),
// or an indeterminate outcome (pending for ever).
//
// Thread safety: none.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sim/linearizability.h"
#include "sim/world.h"
#include "src/base/ids.h"
#include "src/state/command.h"
#include "src/state/lock_table.h"

namespace warden::sim {

struct ClientRequest {
  enum Kind : uint8_t {
    kRead,
    kPut,
    kCas,
    kDelete,
    kLeaseGrant,
    kLeasePut,  // a put attached to `lease`
    kLeaseKeepAlive,
    kLeaseRevoke,
    // SimLockClient's operations (sim/lock_client.h), in the real command
    // format: `lock` is the LockCommand; a guarded put also has key, value.
    kLockAcquire,
    kLockRelease,
    kLockCancel,
    kGuardedPut,
  };
  Kind kind = kRead;
  uint64_t client = 0;
  uint64_t seq = 0;
  std::string key;
  std::string value;
  std::optional<std::string> expected;
  int64_t lease = 0;  // lease operations
  int64_t ttl_seconds = 0;
  state::LockCommand lock;  // lock operations
};

struct ClientResponse {
  // kRefused: definitely not executed; kFailed: executed, with an error
  // (a lease that no longer exists).
  enum Code : uint8_t { kOk, kRefused, kFailed };
  Code code = kOk;
  uint64_t client = 0;
  uint64_t seq = 0;
  NodeId leader_hint = kNoNode;
  std::optional<std::string> value;  // kRead
  bool cas_ok = true;                // kCas
  // kLockAcquire, kLockRelease, kLockCancel: the lock table's answer. A
  // queued acquire is answered twice: kQueued when its entry applies, then
  // its final answer (by the node that proposed it, from the entry that
  // resolves it).
  state::LockAnswer lock;
};

struct ClientOptions {
  int keys = 3;
  TimeUs timeout_us = 1000 * kUsPerMs;
  TimeUs think_max_us = 20 * kUsPerMs;
  double read_ratio = 0.4;
  double cas_ratio = 0.2;
  double delete_ratio = 0.1;
  double lease_ratio = 0.1;  // the rest are puts
  // Reads may go to any node (clients spread reads over endpoints; a
  // follower forwards the ReadIndex to its leader).
  double read_anywhere = 0.5;
};

class SimClient {
 public:
  using SendFn = std::function<void(NodeId to, const ClientRequest&)>;
  // Called when the client invokes a lease grant (for the lease check).
  using GrantFn = std::function<void(int64_t lease, int64_t ttl_seconds, TimeUs at_us)>;

  SimClient(World* world, Rng rng, uint64_t id, std::vector<NodeId> nodes,
            const ClientOptions& options, HistoryRecorder* history, SendFn send, GrantFn grant);

  // Where the client may send a request when it has no leader hint: the
  // cluster's members as a real client learns them (MemberList), so that it
  // does not keep asking members that were removed. Unset: every node.
  void set_members(std::function<std::vector<NodeId>()> members) { members_ = std::move(members); }

  void Start();
  void OnResponse(const ClientResponse& r);
  // Stops issuing operations; the open one, if any, becomes indeterminate.
  void Stop();

  // Liveness: operations invoked at or after `since` that completed ok.
  void set_liveness_epoch(TimeUs since) {
    epoch_us_ = since;
    ok_since_epoch_ = 0;
  }
  uint64_t ok_since_epoch() const { return ok_since_epoch_; }
  uint64_t completed_ok() const { return completed_ok_; }
  uint64_t id() const { return id_; }

 private:
  void Next();
  void Issue();
  void OnTimeout(uint64_t seq);
  void PickTarget(NodeId hint);
  NodeId AnyMember();
  // Fills `req` with a lease operation (no history entry).
  void PickLeaseOp(ClientRequest* req);
  static bool Recorded(ClientRequest::Kind k) { return k <= ClientRequest::kDelete; }
  std::string Who() const { return Format("c%llu", static_cast<unsigned long long>(id_)); }

  World* world_;
  Rng rng_;
  uint64_t id_;
  std::vector<NodeId> nodes_;
  std::function<std::vector<NodeId>()> members_;
  ClientOptions options_;
  HistoryRecorder* history_;
  SendFn send_;
  GrantFn grant_;

  bool stopped_ = false;
  NodeId target_;  // the node believed to lead
  NodeId sent_to_;
  uint64_t next_seq_ = 1;
  // The open attempt, if any.
  bool open_ = false;
  ClientRequest req_;
  HistoryRecorder::Handle handle_ = 0;
  TimeUs invoked_us_ = 0;
  int key_index_ = 0;
  // Writes abandoned after a timeout, by seq: a late answer still tells
  // their outcome (the client observed it then), which keeps the history
  // small for the checker.
  struct Abandoned {
    HistoryRecorder::Handle handle;
    ClientRequest::Kind kind;
  };
  std::map<uint64_t, Abandoned> abandoned_;
  // Last value seen per key index, so that some CAS operations succeed.
  std::vector<std::optional<std::string>> last_seen_;
  int64_t lease_ = 0;  // the client's live lease, 0 if none

  TimeUs epoch_us_ = 0;
  uint64_t ok_since_epoch_ = 0;
  uint64_t completed_ok_ = 0;
};

}  // namespace warden::sim
