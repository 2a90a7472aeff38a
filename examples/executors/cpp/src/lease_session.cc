#include "lease_session.h"

#include <algorithm>

namespace orchexample {

using orchestrator::v1::LeaseRequest;
using orchestrator::v1::LeaseResponse;

LeaseSession::LeaseSession(orchestrator::v1::Executors::Stub& stub, const std::string& token) {
  context_.set_wait_for_ready(true);
  if (!token.empty()) context_.AddMetadata("authorization", "Bearer " + token);
  stream_ = stub.Lease(&context_);
}

bool LeaseSession::Send(const LeaseRequest& request) {
  std::lock_guard<std::mutex> lock(write_mutex_);
  // A failed Write means the call is over: Read is about to return false as well.
  return !closed_ && stream_->Write(request);
}

void LeaseSession::HalfClose() {
  std::lock_guard<std::mutex> lock(write_mutex_);
  if (closed_) return;
  closed_ = true;
  stream_->WritesDone();
}

bool LeaseSession::Read(LeaseResponse* response) { return stream_->Read(response); }

grpc::Status LeaseSession::Finish() {
  {
    std::lock_guard<std::mutex> lock(write_mutex_);
    closed_ = true;
    if (timers_) timers_->Cancel(heartbeat_);
  }
  return stream_->Finish();
}

void LeaseSession::StartHeartbeats(Timers& timers, std::chrono::milliseconds interval, ShortestTtl shortest_ttl) {
  std::lock_guard<std::mutex> lock(write_mutex_);
  if (closed_) return;
  timers_ = &timers;
  last_heartbeat_ = Timers::Clock::now();
  ScheduleHeartbeat(timers, interval, std::move(shortest_ttl));
}

// Checks every 50 ms (at most the interval) whether a heartbeat is due.
void LeaseSession::ScheduleHeartbeat(Timers& timers, std::chrono::milliseconds interval, ShortestTtl shortest_ttl) {
  using std::chrono::milliseconds;
  std::weak_ptr<LeaseSession> weak = weak_from_this();
  heartbeat_ = timers.After(std::min(interval, milliseconds(50)), [weak, &timers, interval, shortest_ttl] {
    std::shared_ptr<LeaseSession> session = weak.lock();
    if (!session) return;
    // Before the write lock, so the executor's lock (taken in there) is never held with it.
    milliseconds every = interval;
    const milliseconds ttl = shortest_ttl();
    if (ttl.count() > 0) every = std::min(every, ttl / 3);
    every = std::max(every, milliseconds(50));
    std::lock_guard<std::mutex> lock(session->write_mutex_);
    if (session->closed_) return;
    const auto now = Timers::Clock::now();
    if (now - session->last_heartbeat_ >= every) {
      LeaseRequest beat;
      beat.mutable_heartbeat();
      session->stream_->Write(beat);
      session->last_heartbeat_ = now;
    }
    session->ScheduleHeartbeat(timers, interval, shortest_ttl);
  });
}

}  // namespace orchexample
