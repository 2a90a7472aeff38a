// The executor's state across Lease streams (docs/EXECUTORS.md): what it holds, what it reported
// and awaits an ack for, and the stream reports go to.
//
// Each assignment gets one progress report (it moves the task to RUNNING), runs for --sleep-ms on
// a work thread, then is reported once with its lease token; revocations cancel the work; refused
// acks drop the result; acks with code UNAVAILABLE are sent again. When the stream breaks it
// reconnects with backoff and lists the leases it still holds in hello.resume.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "flags.h"
#include "lease_session.h"
#include "orchestrator/v1/executors.grpc.pb.h"
#include "timers.h"
#include "work_pool.h"

namespace orchexample {

class Executor {
 public:
  explicit Executor(Flags flags);
  int Run();  // returns after --tasks accepted completions; otherwise runs until killed

 private:
  struct Work;

  grpc::Status RunSession();
  void OnWelcome(const std::shared_ptr<LeaseSession>& session, const orchestrator::v1::Welcome& welcome);
  void OnAssignment(const std::shared_ptr<LeaseSession>& session, const orchestrator::v1::Assignment& assignment);
  void OnAck(const std::shared_ptr<LeaseSession>& session, const orchestrator::v1::ReportAck& ack);
  void Finish(const std::shared_ptr<Work>& work);
  orchestrator::v1::LeaseRequest Outcome(const orchestrator::v1::Assignment& assignment);
  void ResendLater(const orchestrator::v1::LeaseToken& lease);
  void Abandon(const orchestrator::v1::LeaseToken& lease, const std::string& why);

  const Flags flags_;
  std::unique_ptr<orchestrator::v1::Executors::Stub> stub_;

  std::mutex mutex_;
  // Guarded by mutex_. Keyed by task id; a work's lease carries its token too.
  std::map<std::string, std::shared_ptr<Work>> in_flight_;
  std::map<std::string, orchestrator::v1::LeaseRequest> unacked_;  // the final report sent
  std::map<std::string, int> pending_progress_acks_;
  std::shared_ptr<LeaseSession> current_;  // the stream reports go to; null between streams
  int started_ = 0;
  int completed_ = 0;
  bool done_ = false;

  // Last: destroyed first, so no callback or work thread outlives the state above.
  Timers timers_;
  WorkPool pool_;
};

}  // namespace orchexample
