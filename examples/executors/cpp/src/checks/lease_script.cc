#include "checks/lease_script.h"

#include <chrono>

#include "checks/check.h"

namespace orchexample::checks {

using orchestrator::v1::LeaseRequest;
using orchestrator::v1::LeaseResponse;
using orchestrator::v1::LeaseToken;

namespace {
constexpr std::chrono::seconds kWait{15};
}

LeaseScript::LeaseScript(orchestrator::v1::Executors::Stub& stub, const std::string& executor_id,
                         const std::string& capability, int max_in_flight) {
  stream_ = stub.Lease(&context_);
  LeaseRequest hello;
  auto* h = hello.mutable_hello();
  h->set_executor_id(executor_id);
  h->add_capabilities(capability);
  h->set_max_in_flight(max_in_flight);
  h->set_version("examples/cpp api-checks");
  (*h->mutable_labels())["language"] = "cpp";
  Send(hello);
  reader_ = std::thread([this] { ReadLoop(); });
}

LeaseScript::~LeaseScript() {
  context_.TryCancel();
  reader_.join();
}

void LeaseScript::ReadLoop() {
  LeaseResponse response;
  while (stream_->Read(&response)) {
    std::lock_guard<std::mutex> lock(mutex_);
    responses_.push_back(response);
    changed_.notify_all();
  }
  {
    // Finish only once no Write can start.
    std::lock_guard<std::mutex> lock(write_mutex_);
    closed_ = true;
  }
  grpc::Status status = stream_->Finish();
  std::lock_guard<std::mutex> lock(mutex_);
  ended_ = status;
  changed_.notify_all();
}

void LeaseScript::Send(const LeaseRequest& request) {
  std::lock_guard<std::mutex> lock(write_mutex_);
  if (!closed_) stream_->Write(request);
}

LeaseResponse LeaseScript::Next(const std::string& what, const std::function<bool(const LeaseResponse&)>& want) {
  auto deadline = std::chrono::steady_clock::now() + kWait;
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    if (!changed_.wait_until(lock, deadline, [this] { return !responses_.empty() || ended_; })) {
      throw CheckFailed("no " + what + " within 15s");
    }
    if (responses_.empty()) throw CheckFailed("no " + what + ": stream ended " + Describe(*ended_));
    LeaseResponse response = std::move(responses_.front());
    responses_.pop_front();
    if (want(response)) return response;
    if (response.has_heartbeat_ack()) continue;
    throw CheckFailed("waiting for " + what + ", got " + response.ShortDebugString());
  }
}

orchestrator::v1::Welcome LeaseScript::Welcome() {
  return Next("welcome", [](const LeaseResponse& r) { return r.has_welcome(); }).welcome();
}

orchestrator::v1::Assignment LeaseScript::Assignment() {
  return Next("assignment", [](const LeaseResponse& r) { return r.has_assignment(); }).assignment();
}

orchestrator::v1::ReportAck LeaseScript::Ack(const LeaseToken& lease) {
  orchestrator::v1::ReportAck ack = Next("ack", [](const LeaseResponse& r) { return r.has_ack(); }).ack();
  EqualMessage(lease, ack.lease(), "ack lease");
  return ack;
}

void LeaseScript::Complete(const LeaseToken& lease, const std::string& result) {
  LeaseRequest completion;
  *completion.mutable_completion()->mutable_lease() = lease;
  completion.mutable_completion()->set_result(result);
  Send(completion);
  orchestrator::v1::ReportAck ack = Ack(lease);
  Check(ack.accepted(), "completion refused: " + ack.ShortDebugString());
}

grpc::Status LeaseScript::Close() {
  LeaseRequest drain;
  drain.mutable_drain();
  {
    std::lock_guard<std::mutex> lock(write_mutex_);
    if (!closed_) {
      stream_->Write(drain);
      stream_->WritesDone();
      closed_ = true;
    }
  }
  return Ended();
}

void LeaseScript::Cancel() { context_.TryCancel(); }

grpc::Status LeaseScript::Ended() {
  std::unique_lock<std::mutex> lock(mutex_);
  if (!changed_.wait_for(lock, kWait, [this] { return ended_.has_value(); })) {
    throw CheckFailed("the Lease stream did not end within 15s");
  }
  return *ended_;
}

}  // namespace orchexample::checks
