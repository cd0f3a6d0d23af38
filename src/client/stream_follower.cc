#include "src/client/stream_follower.h"

#include <algorithm>

namespace warden::client {

StreamFollower::StreamFollower(Client* client, Session session)
    : client_(client), session_(std::move(session)) {
  thread_ = std::thread([this] { Run(); });
}

void StreamFollower::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    if (current_ != nullptr) current_->TryCancel();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void StreamFollower::Run() {
  const std::function<bool()> alive = [this] {
    backoff_ = Millis(100);
    std::lock_guard<std::mutex> lock(mu_);
    return !stop_;
  };
  for (int pass = 0; pass < 100000000; ++pass) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
    }
    size_t index = 0;
    std::shared_ptr<grpc::Channel> ch =
        client_->Connected(Clock::now() + client_->options().dial_timeout, &index);
    if (ch) {
      grpc::ClientContext ctx;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stop_) return;
        current_ = &ctx;
      }
      session_(ch, &ctx, alive);
      std::lock_guard<std::mutex> lock(mu_);
      current_ = nullptr;
      if (stop_) return;
    }
    client_->FailOver(index);
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, backoff_, [&] { return stop_; });
    backoff_ = std::min(backoff_ * 2, Millis(1000));
  }
}

}  // namespace warden::client
