// A bidirectional gRPC stream driven by a Shard's completion queue.
#ifndef WARDEN_BENCH_LOAD_STREAM_H_
#define WARDEN_BENCH_LOAD_STREAM_H_

#include <deque>
#include <functional>
#include <memory>

#include "bench/load/shard.h"

namespace warden::bench {

// A bidirectional stream: one read always outstanding, writes queued and sent
// one at a time. Callbacks run on the shard thread. When the stream ends
// (error, or Cancel()), on_close gets the final status; a client that wants
// to go on opens a new Stream and hands the old one to Shard::Bury.
template <class Req, class Resp>
class Stream final : public StreamBase {
 public:
  struct Callbacks {
    std::function<void(bool ok)> on_open;
    std::function<void(Resp&)> on_message;
    std::function<void(const grpc::Status&)> on_close;
  };

  Stream(Shard* shard, Callbacks cb) : shard_(shard), cb_(std::move(cb)) {}

  template <class Stub>
  void Open(Stub* stub, PrepareStreamFn<Stub, Req, Resp> prepare) {
    rw_ = (stub->*prepare)(&ctx_, shard_->cq());
    shard_->AddOutstanding(&ctx_);  // until Finish completes
    rw_->StartCall(&start_tag_);
  }
  void Send(const Req& req) {
    if (closing_) return;
    out_.push_back(req);
    MaybeWrite();
  }
  void Cancel() { ctx_.TryCancel(); }
  bool open() const { return open_ && !closing_; }
  bool closed() const { return closed_; }

 private:
  enum Kind { kStart, kRead, kWrite, kFinish };
  class Event final : public Tag {
   public:
    Event(Stream* s, Kind k) : s_(s), k_(k) {}
    void Complete(bool ok) override { s_->On(k_, ok); }

   private:
    Stream* s_;
    Kind k_;
  };

  void MaybeWrite() {
    if (!open_ || writing_ || closing_ || out_.empty()) return;
    writing_ = true;
    rw_->Write(out_.front(), &write_tag_);
  }
  void MaybeFinish() {
    // Finish once the read side has failed and no write is in flight.
    if (!closing_ || writing_ || finishing_ || reading_) return;
    finishing_ = true;
    rw_->Finish(&status_, &finish_tag_);
  }
  void On(Kind k, bool ok) {
    switch (k) {
      case kStart:
        if (!ok) {
          closing_ = true;
          MaybeFinish();
          cb_.on_open(false);
          return;
        }
        open_ = true;
        reading_ = true;
        rw_->Read(&in_, &read_tag_);
        MaybeWrite();
        cb_.on_open(true);
        return;
      case kRead:
        reading_ = false;
        if (!ok) {
          closing_ = true;
          out_.clear();
          MaybeFinish();
          return;
        }
        cb_.on_message(in_);
        if (!closing_) {
          reading_ = true;
          rw_->Read(&in_, &read_tag_);
        }
        return;
      case kWrite:
        writing_ = false;
        if (!out_.empty()) out_.pop_front();
        if (!ok) {
          out_.clear();
          closing_ = true;  // the read fails too, then we finish
        }
        MaybeWrite();
        MaybeFinish();
        return;
      case kFinish:
        closed_ = true;
        shard_->RemoveOutstanding(&ctx_);
        cb_.on_close(status_);
        return;
    }
  }

  Shard* shard_;
  Callbacks cb_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientAsyncReaderWriter<Req, Resp>> rw_;
  Resp in_;
  std::deque<Req> out_;
  grpc::Status status_;
  Event start_tag_{this, kStart}, read_tag_{this, kRead}, write_tag_{this, kWrite},
      finish_tag_{this, kFinish};
  bool open_ = false, reading_ = false, writing_ = false, closing_ = false, finishing_ = false,
       closed_ = false;
};

}  // namespace warden::bench

#endif  // WARDEN_BENCH_LOAD_STREAM_H_
