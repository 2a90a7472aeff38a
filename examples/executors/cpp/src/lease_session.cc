#include "lease_session.h"

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

void LeaseSession::StartHeartbeats(Timers& timers, std::chrono::milliseconds interval) {
  std::lock_guard<std::mutex> lock(write_mutex_);
  if (closed_) return;
  timers_ = &timers;
  ScheduleHeartbeat(timers, interval);
}

void LeaseSession::ScheduleHeartbeat(Timers& timers, std::chrono::milliseconds interval) {
  std::weak_ptr<LeaseSession> weak = weak_from_this();
  heartbeat_ = timers.After(interval, [weak, &timers, interval] {
    std::shared_ptr<LeaseSession> session = weak.lock();
    if (!session) return;
    LeaseRequest beat;
    beat.mutable_heartbeat();
    std::lock_guard<std::mutex> lock(session->write_mutex_);
    if (session->closed_) return;
    session->stream_->Write(beat);
    session->ScheduleHeartbeat(timers, interval);
  });
}

}  // namespace orchexample
