// Unary calls: plan, submit and get with metadata, deadlines, message limits, gzip, unknown
// methods and google.rpc.Status details.
#include <grpcpp/generic/generic_stub.h>

#include <future>

#include "channel.h"
#include "checks/api_checks.h"
#include "google/rpc/status.pb.h"

namespace orchexample::checks {

using namespace orchestrator::v1;
using std::chrono::milliseconds;
using std::chrono::seconds;

ApiChecks::ApiChecks(const std::string& address, const std::string& prefix)
    : address_(address),
      prefix_(prefix),
      channel_(OpenChannel(ChannelConfig{address, "", "", 4 * kMiB})),
      workflows_(Workflows::NewStub(channel_)),
      executors_(Executors::NewStub(channel_)) {}

std::string ApiChecks::Submit(const orchestrator::v1::Query& query) {
  SubmitQueryRequest request;
  *request.mutable_query() = query;
  return Call(&Workflows::Stub::SubmitQuery, request, "SubmitQuery").workflow().workflow_id();
}

std::string ApiChecks::Idle() {
  if (idle_workflow_id_.empty()) idle_workflow_id_ = Submit(Query({Task("only", prefix_ + "-nobody")}));
  return idle_workflow_id_;
}

Workflow ApiChecks::Get(const std::string& workflow_id, bool tasks) {
  GetWorkflowRequest request;
  request.set_workflow_id(workflow_id);
  request.set_include_tasks(tasks);
  return Call(&Workflows::Stub::GetWorkflow, request, "GetWorkflow").workflow();
}

void ApiChecks::CancelIdle() {
  if (idle_workflow_id_.empty()) return;
  grpc::ClientContext context;
  SetDeadline(context, seconds(10));
  CancelWorkflowRequest request;
  request.set_workflow_id(idle_workflow_id_);
  request.set_reason("api-checks done");
  CancelWorkflowResponse response;
  workflows_->CancelWorkflow(&context, request, &response);
}

std::string ApiChecks::UnaryPlan() {
  std::string cap = prefix_ + "-plan";
  PlanWorkflowRequest request;
  *request.mutable_query() = Query({Task("a", cap), Task("b", cap, {"a"}), Task("c", cap, {"a", "b"})});
  PlanWorkflowResponse plan = Call(&Workflows::Stub::PlanWorkflow, request, "PlanWorkflow");
  const auto& order = plan.analysis().topological_order();
  Equal(std::vector<std::string>{"a", "b", "c"}, std::vector<std::string>(order.begin(), order.end()), "topological order");
  Equal(3, plan.analysis().task_count(), "task_count");
  Equal(3, plan.analysis().edge_count(), "edge_count");
  Equal(std::string("explicit"), plan.planning().planner(), "planner");
  return "3 tasks planned by " + plan.planning().planner();
}

std::string ApiChecks::UnarySubmitGetTraceparent() {
  std::string trace_id = Hex(16);
  SubmitQueryRequest request;
  request.set_request_id("cpp-" + Hex(16));
  *request.mutable_query() = Query({Task("only", prefix_ + "-nobody")});
  grpc::ClientContext context;
  SetDeadline(context, seconds(30));
  context.AddMetadata("traceparent", "00-" + trace_id + "-" + Hex(8) + "-01");
  context.AddMetadata("x-cpp-client", "grpc++");  // plain custom metadata is accepted alongside
  context.AddMetadata("x-cpp-blob-bin", std::string("\0\1\2\xff", 4));  // -bin: grpc++ sends it base64
  SubmitQueryResponse first;
  ExpectOk(workflows_->SubmitQuery(&context, request, &first), "SubmitQuery");
  Check(first.created(), "first submit: created=false");
  Equal(trace_id, first.workflow().trace_id(), "workflow trace_id (from the traceparent header)");
  SubmitQueryResponse again = Call(&Workflows::Stub::SubmitQuery, request, "SubmitQuery again");
  Check(!again.created(), "same request_id again: created=true");
  Equal(first.workflow().workflow_id(), again.workflow().workflow_id(), "same request_id, workflow id");
  Workflow workflow = Get(first.workflow().workflow_id(), true);
  Equal(WorkflowState_Name(WORKFLOW_STATE_RUNNING), WorkflowState_Name(workflow.state()), "state");
  Equal(1, workflow.tasks_size(), "tasks");
  idle_workflow_id_ = workflow.workflow_id();
  return workflow.workflow_id() + " trace_id=" + trace_id + ", resubmit deduplicated";
}

std::string ApiChecks::DeadlineExceeded() {
  SubmitQueryRequest request;
  request.set_request_id("cpp-deadline-" + Hex(16));
  request.set_wait(true);
  *request.mutable_query() = Query({Task("never", prefix_ + "-nobody")});
  auto start = std::chrono::steady_clock::now();
  grpc::ClientContext context;
  SetDeadline(context, milliseconds(800));
  SubmitQueryResponse response;
  grpc::Status unary = ExpectStatus(grpc::StatusCode::DEADLINE_EXCEEDED, workflows_->SubmitQuery(&context, request, &response));
  long long unary_ms = MillisSince(start);
  Check(unary_ms >= 700 && unary_ms < 5000, "unary deadline after " + std::to_string(unary_ms) + " ms");
  // The workflow was stored all the same: the same request id finds it; cancel it.
  request.set_wait(false);
  CancelWorkflowRequest cancel;
  cancel.set_workflow_id(Call(&Workflows::Stub::SubmitQuery, request, "SubmitQuery again").workflow().workflow_id());
  cancel.set_reason("api-checks");
  Call(&Workflows::Stub::CancelWorkflow, cancel, "CancelWorkflow");

  // Server streaming, synchronous reader: a watch of a workflow that does not end, under 600 ms.
  WatchWorkflowRequest watch;
  watch.set_workflow_id(Idle());
  grpc::ClientContext watch_context;
  SetDeadline(watch_context, milliseconds(600));
  start = std::chrono::steady_clock::now();
  auto reader = workflows_->WatchWorkflow(&watch_context, watch);
  WorkflowEvent event;
  int seen = 0;
  while (reader->Read(&event)) seen++;
  grpc::Status ended = reader->Finish();
  Equal(CodeName(grpc::StatusCode::DEADLINE_EXCEEDED), CodeName(ended.error_code()), "watch status");
  long long watch_ms = MillisSince(start);
  Check(seen >= 1, "watch delivered no event before its deadline");
  return "unary wait=true after " + std::to_string(unary_ms) + " ms (" + unary.error_message() + "); watch after " +
         std::to_string(watch_ms) + " ms, " + std::to_string(seen) + " events";
}

std::string ApiChecks::MessageOver4MiB() {
  SubmitQueryRequest request;
  TaskSpec big = Task("big", prefix_ + "-nobody");
  big.set_payload(RandomBytes(5 * kMiB));
  *request.mutable_query() = Query({big});
  grpc::ClientContext context;
  SetDeadline(context, seconds(30));
  SubmitQueryResponse response;
  // grpc++ clients send any size by default (GRPC_ARG_MAX_SEND_MESSAGE_LENGTH -1): the server decides.
  grpc::Status over = ExpectStatus(grpc::StatusCode::RESOURCE_EXHAUSTED, workflows_->SubmitQuery(&context, request, &response));
  UnaryPlan();  // same connection, next call fine
  // gzip: 5 MiB of zeros is 5 KiB on the wire, and inflates past the server's limit.
  TaskSpec zeros = Task("zeros", prefix_ + "-nobody");
  zeros.set_payload(std::string(5 * kMiB, '\0'));
  *request.mutable_query() = Query({zeros});
  grpc::ClientContext gzip;
  SetDeadline(gzip, seconds(30));
  gzip.set_compression_algorithm(GRPC_COMPRESS_GZIP);
  grpc::Status bomb = ExpectStatus(grpc::StatusCode::RESOURCE_EXHAUSTED, workflows_->SubmitQuery(&gzip, request, &response));
  return "5 MiB request: " + over.error_message() + "; gzip bomb: " + bomb.error_message();
}

std::string ApiChecks::GzipRequests() {
  std::string cap = prefix_ + "-plan";
  PlanWorkflowRequest request;
  *request.mutable_query() = Query({Task("a", cap), Task("b", cap, {"a"})});
  grpc::ClientContext context;
  SetDeadline(context, seconds(30));
  context.set_compression_algorithm(GRPC_COMPRESS_GZIP);
  PlanWorkflowResponse plan;
  ExpectOk(workflows_->PlanWorkflow(&context, request, &plan), "PlanWorkflow with gzip");
  Equal(2, plan.analysis().task_count(), "task_count");
  return "PlanWorkflow with grpc-encoding gzip";
}

std::string ApiChecks::Unimplemented() {
  // grpc++'s GenericStub calls any method by name with raw bytes: here, an empty PlanWorkflowRequest.
  grpc::GenericStub generic(channel_);
  std::string detail;
  for (std::string method : {"/orchestrator.v1.Workflows/NoSuchMethod", "/orchestrator.v1.NoSuchService/Plan"}) {
    grpc::ClientContext context;
    SetDeadline(context, seconds(10));
    grpc::Slice empty;
    grpc::ByteBuffer request(&empty, 1);
    grpc::ByteBuffer response;
    std::promise<grpc::Status> done;
    generic.UnaryCall(&context, method, grpc::StubOptions(), &request, &response,
                      [&done](grpc::Status status) { done.set_value(status); });
    grpc::Status status = done.get_future().get();
    ExpectStatus(grpc::StatusCode::UNIMPLEMENTED, status);
    Check(status.error_message().find(method.substr(1)) != std::string::npos,
          "message does not name the method: " + Describe(status));
    detail += (detail.empty() ? "" : "; ") + status.error_message();
  }
  return detail;
}

std::string ApiChecks::StatusDetails() {
  std::string cap = prefix_ + "-plan";
  PlanWorkflowRequest request;
  *request.mutable_query() = Query({Task("p", cap, {"q"}), Task("q", cap, {"p"})});
  grpc::ClientContext context;
  SetDeadline(context, seconds(30));
  PlanWorkflowResponse response;
  grpc::Status status = ExpectStatus(grpc::StatusCode::INVALID_ARGUMENT, workflows_->PlanWorkflow(&context, request, &response));
  // grpc++ hands over grpc-status-details-bin as error_details(), still serialized.
  Check(!status.error_details().empty(), "no grpc-status-details-bin");
  google::rpc::Status details;
  Check(details.ParseFromString(status.error_details()), "grpc-status-details-bin is not a google.rpc.Status");
  Equal(static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT), details.code(), "details code");
  Check(details.details_size() >= 1, "no details");
  ValidationProblem problem;
  Check(details.details(0).UnpackTo(&problem), "detail 0 is a " + details.details(0).type_url() + ", not a ValidationProblem");
  Equal(std::string("CYCLE"), problem.code(), "problem code");
  return "google.rpc.Status with " + std::to_string(details.details_size()) + " ValidationProblem: " + problem.message();
}

}  // namespace orchexample::checks
