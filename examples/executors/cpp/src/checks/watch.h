// A WatchWorkflow call on grpc++'s callback API (a ClientReadReactor): no thread of its own, so
// hundreds can be open at once on one channel.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <vector>

#include "orchestrator/v1/workflows.grpc.pb.h"

namespace orchexample::checks {

class Watch : public grpc::ClientReadReactor<orchestrator::v1::WorkflowEvent> {
 public:
  // Starts the call; `deadline` zero: none.
  Watch(orchestrator::v1::Workflows::Stub& stub, const orchestrator::v1::WatchWorkflowRequest& request,
        std::chrono::milliseconds deadline = std::chrono::milliseconds(0));
  ~Watch() override;  // cancels the call if it is still open, and waits for OnDone
  Watch(const Watch&) = delete;
  Watch& operator=(const Watch&) = delete;

  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

  bool WaitFirst(std::chrono::milliseconds timeout);                        // false: no event by then
  std::optional<grpc::Status> WaitEnded(std::chrono::milliseconds timeout);  // empty: still open
  std::vector<orchestrator::v1::WorkflowEvent> Events();
  void Cancel() { context_.TryCancel(); }

 private:
  grpc::ClientContext context_;
  orchestrator::v1::WatchWorkflowRequest request_;
  orchestrator::v1::WorkflowEvent event_;  // the read in progress
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<orchestrator::v1::WorkflowEvent> events_;  // guarded by mutex_
  std::optional<grpc::Status> status_;                   // guarded by mutex_
};

}  // namespace orchexample::checks
