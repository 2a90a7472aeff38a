// Checks that an unmodified grpc++ client (Debian's 1.51) gets what the gRPC contract promises
// from orchestratord. Each check returns a line of detail or throws CheckFailed.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>

#include "checks/check.h"
#include "checks/watch.h"
#include "orchestrator/v1/executors.grpc.pb.h"
#include "orchestrator/v1/workflows.grpc.pb.h"

namespace orchexample::checks {

class ApiChecks {
 public:
  ApiChecks(const std::string& address, const std::string& prefix);

  // api_checks_unary.cc
  std::string UnaryPlan();
  std::string UnarySubmitGetTraceparent();
  std::string DeadlineExceeded();
  std::string MessageOver4MiB();
  std::string GzipRequests();
  std::string Unimplemented();
  std::string StatusDetails();
  // api_checks_streams.cc
  std::string LeaseStreamAndWatch();
  std::string LeaseCancelRequeues();
  std::string LargeResponse();
  std::string CancelWatch();
  std::string ManyStreams();
  // api_checks_transport.cc
  void StartKeepalive();  // before the other checks: KeepalivePings needs time to pass
  std::string KeepalivePings();
  std::string Tls(const std::string& tls_address, const std::string& ca_file, const std::string& authority);

  void CancelIdle();  // best effort, at the end

 private:
  template <typename Request, typename Response>
  using Method = grpc::Status (orchestrator::v1::Workflows::Stub::*)(grpc::ClientContext*, const Request&, Response*);

  // A unary Workflows call with a 30 s deadline that must succeed.
  template <typename Request, typename Response>
  Response Call(Method<Request, Response> method, const Request& request, const std::string& what) {
    grpc::ClientContext context;
    SetDeadline(context, std::chrono::seconds(30));
    Response response;
    ExpectOk((workflows_.get()->*method)(&context, request, &response), what);
    return response;
  }

  std::string Idle();  // a workflow no executor serves: RUNNING while the checks run
  orchestrator::v1::Workflow Get(const std::string& workflow_id, bool tasks);
  std::string Submit(const orchestrator::v1::Query& query);  // the new workflow's id

  const std::string address_;
  const std::string prefix_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<orchestrator::v1::Workflows::Stub> workflows_;
  std::unique_ptr<orchestrator::v1::Executors::Stub> executors_;
  std::string idle_workflow_id_;

  struct KeepaliveProbe;
  std::shared_ptr<KeepaliveProbe> keepalive_;
};

}  // namespace orchexample::checks
