#include "checks/watch.h"

#include "checks/check.h"

namespace orchexample::checks {

Watch::Watch(orchestrator::v1::Workflows::Stub& stub, const orchestrator::v1::WatchWorkflowRequest& request,
             std::chrono::milliseconds deadline)
    : request_(request) {
  if (deadline.count() > 0) SetDeadline(context_, deadline);
  stub.async()->WatchWorkflow(&context_, &request_, this);
  StartRead(&event_);
  StartCall();
}

Watch::~Watch() {
  context_.TryCancel();
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [this] { return status_.has_value(); });
}

void Watch::OnReadDone(bool ok) {
  if (!ok) return;  // the call is over: OnDone follows
  {
    std::lock_guard<std::mutex> lock(mutex_);
    events_.push_back(event_);
    changed_.notify_all();
  }
  StartRead(&event_);
}

void Watch::OnDone(const grpc::Status& status) {
  // OnDone is grpc++'s last use of the reactor; notifying under the lock keeps the destructor
  // (which may run as soon as status_ is set) from destroying changed_ under our feet.
  std::lock_guard<std::mutex> lock(mutex_);
  status_ = status;
  changed_.notify_all();
}

bool Watch::WaitFirst(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  return changed_.wait_for(lock, timeout, [this] { return !events_.empty() || status_; }) && !events_.empty();
}

std::optional<grpc::Status> Watch::WaitEnded(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait_for(lock, timeout, [this] { return status_.has_value(); });
  return status_;
}

std::vector<orchestrator::v1::WorkflowEvent> Watch::Events() {
  std::lock_guard<std::mutex> lock(mutex_);
  return events_;
}

}  // namespace orchexample::checks
