// A scripted Lease stream for the checks: a thread reads every response into a queue, which the
// check takes from in order; writes are serialised (grpc++ allows one Write at a time).
#pragma once

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "orchestrator/v1/executors.grpc.pb.h"

namespace orchexample::checks {

class LeaseScript {
 public:
  // Opens the stream and sends hello.
  LeaseScript(orchestrator::v1::Executors::Stub& stub, const std::string& executor_id, const std::string& capability,
              int max_in_flight);
  ~LeaseScript();  // cancels the stream if it is still open
  LeaseScript(const LeaseScript&) = delete;
  LeaseScript& operator=(const LeaseScript&) = delete;

  void Send(const orchestrator::v1::LeaseRequest& request);
  // The next response `want` accepts, skipping heartbeat acks it does not; 15 s at most.
  orchestrator::v1::LeaseResponse Next(const std::string& what,
                                       const std::function<bool(const orchestrator::v1::LeaseResponse&)>& want);
  orchestrator::v1::Welcome Welcome();
  orchestrator::v1::Assignment Assignment();
  orchestrator::v1::ReportAck Ack(const orchestrator::v1::LeaseToken& lease);  // the next ack, which must be for `lease`
  void Complete(const orchestrator::v1::LeaseToken& lease, const std::string& result);  // accepted, or throws
  grpc::Status Close();   // drain, half-close, the status the server ends the stream with
  void Cancel();          // RST_STREAM CANCEL, as grpc++ sends it
  grpc::Status Ended();   // waits (15 s at most) for the stream's end

 private:
  void ReadLoop();

  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<orchestrator::v1::LeaseRequest, orchestrator::v1::LeaseResponse>> stream_;
  std::mutex write_mutex_;
  bool closed_ = false;  // guarded by write_mutex_
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<orchestrator::v1::LeaseResponse> responses_;  // guarded by mutex_
  std::optional<grpc::Status> ended_;                      // guarded by mutex_
  std::thread reader_;
};

}  // namespace orchexample::checks
