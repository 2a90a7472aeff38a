// Streams: the bidi Lease stream scripted by hand, server-streaming watches (callback API),
// cancellation, large responses, more streams than the server's SETTINGS_MAX_CONCURRENT_STREAMS.
#include <map>
#include <set>
#include <thread>

#include "channel.h"
#include "checks/api_checks.h"
#include "checks/lease_script.h"

namespace orchexample::checks {

using namespace orchestrator::v1;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

WatchWorkflowRequest WatchOf(const std::string& workflow_id, bool stop_when_finished) {
  WatchWorkflowRequest request;
  request.set_workflow_id(workflow_id);
  request.set_stop_when_finished(stop_when_finished);
  return request;
}

LeaseRequest Heartbeat(const LeaseToken& lease) {
  LeaseRequest request;
  *request.mutable_heartbeat()->add_leases() = lease;
  return request;
}

LeaseRequest Progress(const LeaseToken& lease, double fraction, const std::string& message) {
  LeaseRequest request;
  *request.mutable_progress()->mutable_lease() = lease;
  request.mutable_progress()->set_fraction(fraction);
  request.mutable_progress()->set_message(message);
  return request;
}

}  // namespace

std::string ApiChecks::LeaseStreamAndWatch() {
  std::string cap = prefix_ + "-lease";
  LeaseScript stream(*executors_, "cpp-checks-" + prefix_, cap, 2);
  Welcome welcome = stream.Welcome();
  Check(welcome.heartbeat_interval_ms() > 0 && welcome.lease_ttl_ms() > 0, "welcome without intervals: " + Show(welcome));
  Check(!welcome.session_id().empty(), "welcome without session_id");

  std::string trace_id = Hex(16);
  TaskSpec c = Task("c", cap, {"a", "b"});
  c.set_payload("payload of c");
  SubmitQueryRequest submit;
  *submit.mutable_query() = Query({Task("a", cap), Task("b", cap, {"a"}), c});
  grpc::ClientContext context;
  SetDeadline(context, seconds(30));
  context.AddMetadata("traceparent", "00-" + trace_id + "-" + Hex(8) + "-01");
  SubmitQueryResponse submitted;
  ExpectOk(workflows_->SubmitQuery(&context, submit, &submitted), "SubmitQuery");
  std::string workflow_id = submitted.workflow().workflow_id();
  Watch watch(*workflows_, WatchOf(workflow_id, true));

  std::map<std::string, std::string> results;
  for (std::string key : {"a", "b", "c"}) {
    Assignment a = stream.Assignment();
    Equal(key, a.spec().key(), "assignment order (a chain)");
    Equal(workflow_id, a.workflow_id(), "assignment workflow_id");
    Equal(1, a.attempt(), "attempt");
    Check(a.traceparent().find(trace_id) != std::string::npos, "assignment traceparent " + a.traceparent() + " lacks trace " + trace_id);
    const LeaseToken& lease = a.lease();
    Check(lease.fencing_token() >= 1, "fencing token " + std::to_string(lease.fencing_token()));

    stream.Send(Progress(lease, 0.5, "half way (c++)"));
    Check(stream.Ack(lease).accepted(), "progress refused");

    stream.Send(Heartbeat(lease));
    LeaseResponse beat = stream.Next("heartbeat ack", [](const LeaseResponse& r) {
      return r.has_heartbeat_ack() && r.heartbeat_ack().leases_size() == 1;
    });
    const LeaseStatus& status = beat.heartbeat_ack().leases(0);
    Check(status.valid(), "heartbeat ack: " + Show(status));
    EqualMessage(lease, status.lease(), "heartbeat ack lease");

    LeaseToken wrong = lease;
    wrong.set_fencing_token(lease.fencing_token() + 1);
    LeaseRequest forged;
    *forged.mutable_completion()->mutable_lease() = wrong;
    forged.mutable_completion()->set_result("forged");
    stream.Send(forged);
    ReportAck refused = stream.Ack(wrong);
    Check(!refused.accepted() && refused.code() == 9, "completion with a token never issued: " + Show(refused));

    if (key == "c") {
      Equal(std::string("payload of c"), a.spec().payload(), "payload");
      std::map<std::string, std::string> upstream(a.upstream_results().begin(), a.upstream_results().end());
      Check(upstream == results, "upstream results of c differ from what a and b reported");
    }
    std::string result = "result of " + key + " from c++";
    stream.Complete(lease, result);
    results[key] = result;
  }
  grpc::Status closed = stream.Close();
  Check(closed.ok(), "Lease stream after drain + half-close ended " + Describe(closed));

  std::optional<grpc::Status> watch_end = watch.WaitEnded(seconds(15));
  Check(watch_end && watch_end->ok(), "watch ended " + (watch_end ? Describe(*watch_end) : "not at all within 15s"));
  std::vector<WorkflowEvent> events = watch.Events();
  std::multiset<int> types;
  for (size_t i = 0; i < events.size(); i++) {
    Check(i == 0 || events[i].sequence() > events[i - 1].sequence(), "event sequences not increasing");
    types.insert(events[i].type());
  }
  Check(!events.empty(), "watch delivered no event");
  Equal(EventType_Name(EVENT_TYPE_WORKFLOW_SUBMITTED), EventType_Name(events.front().type()), "first event");
  Equal(EventType_Name(EVENT_TYPE_WORKFLOW_SUCCEEDED), EventType_Name(events.back().type()), "last event");
  Equal(3, static_cast<int>(types.count(EVENT_TYPE_TASK_SUCCEEDED)), "task_succeeded events");
  Equal(3, static_cast<int>(types.count(EVENT_TYPE_TASK_RUNNING)), "task_running events (progress)");
  Equal(WorkflowState_Name(WORKFLOW_STATE_SUCCEEDED), WorkflowState_Name(Get(workflow_id, false).state()), "workflow state");
  return workflow_id + ": 3 tasks leased, progressed, heartbeated, forged token refused (9), completed; watch got " +
         std::to_string(events.size()) + " events and ended OK";
}

// ClientContext::TryCancel on a Lease stream that holds a lease (RST_STREAM CANCEL): the server
// gives the lease back at once, and the next stream gets the task with a higher fencing token.
std::string ApiChecks::LeaseCancelRequeues() {
  std::string cap = prefix_ + "-cancel";
  LeaseScript first(*executors_, "cpp-checks-first-" + prefix_, cap, 1);
  first.Welcome();
  std::string workflow_id = Submit(Query({Task("once", cap)}));
  LeaseToken held = first.Assignment().lease();
  auto cancelled = std::chrono::steady_clock::now();
  first.Cancel();
  Equal(CodeName(grpc::StatusCode::CANCELLED), CodeName(first.Ended().error_code()), "cancelled stream's status");
  LeaseScript second(*executors_, "cpp-checks-second-" + prefix_, cap, 1);
  second.Welcome();
  Assignment again = second.Assignment();
  long long requeue_ms = MillisSince(cancelled);
  Equal(held.task_id(), again.lease().task_id(), "task handed to the next stream");
  Check(again.lease().fencing_token() > held.fencing_token(), "fencing token did not grow: " + Show(again.lease()));
  second.Complete(again.lease(), "done by the second stream");
  Check(second.Close().ok(), "second lease stream did not end OK");
  Equal(WorkflowState_Name(WORKFLOW_STATE_SUCCEEDED), WorkflowState_Name(Get(workflow_id, false).state()), "workflow state");
  return "token " + std::to_string(held.fencing_token()) + " given back on RST_STREAM; token " +
         std::to_string(again.lease().fencing_token()) + " to the next stream after " + std::to_string(requeue_ms) + " ms";
}

std::string ApiChecks::LargeResponse() {
  std::string cap = prefix_ + "-big";
  LeaseScript stream(*executors_, "cpp-checks-big-" + prefix_, cap, 2);
  stream.Welcome();
  std::string workflow_id = Submit(Query({Task("x", cap), Task("y", cap)}));
  std::map<std::string, std::string> sent;
  std::vector<Assignment> assignments{stream.Assignment(), stream.Assignment()};
  for (const Assignment& a : assignments) {
    std::string result = RandomBytes(5 * kMiB / 2);
    sent[a.spec().key()] = result;
    stream.Complete(a.lease(), result);  // a 2.5 MiB message to the server
  }
  Check(stream.Close().ok(), "lease stream did not end OK");
  // Two 2.5 MiB results: a GetWorkflow(include_tasks) response over the 4 MiB this channel takes.
  GetWorkflowRequest request;
  request.set_workflow_id(workflow_id);
  request.set_include_tasks(true);
  GetWorkflowResponse response;
  grpc::ClientContext context;
  SetDeadline(context, seconds(30));
  grpc::Status limited = ExpectStatus(grpc::StatusCode::RESOURCE_EXHAUSTED, workflows_->GetWorkflow(&context, request, &response));
  // grpc++ has no per-call receive limit (grpc-java's withMaxInboundMessageSize): another channel.
  auto roomy = Workflows::NewStub(OpenChannel(ChannelConfig{address_, "", "", 16 * kMiB}));
  grpc::ClientContext again;
  SetDeadline(again, seconds(30));
  ExpectOk(roomy->GetWorkflow(&again, request, &response), "GetWorkflow on a 16 MiB channel");
  Equal(WorkflowState_Name(WORKFLOW_STATE_SUCCEEDED), WorkflowState_Name(response.workflow().state()), "state");
  for (const orchestrator::v1::Task& t : response.workflow().tasks()) {
    Check(sent[t.spec().key()] == t.result(), "result of " + t.spec().key() + " differs");
  }
  UnaryPlan();
  return "client limit: " + limited.error_message() + "; with 16 MiB: " + std::to_string(response.workflow().ByteSizeLong()) +
         " bytes, results intact";
}

std::string ApiChecks::CancelWatch() {
  const int rounds = 30;
  for (int i = 0; i < rounds; i++) {
    Watch watch(*workflows_, WatchOf(Idle(), false));
    Check(watch.WaitFirst(seconds(10)), "no first event within 10s");
    if (std::optional<grpc::Status> early = watch.WaitEnded(milliseconds(0))) {
      throw CheckFailed("watch of a running workflow ended by itself: " + Describe(*early));
    }
    watch.Cancel();
    std::optional<grpc::Status> status = watch.WaitEnded(seconds(10));
    Check(status.has_value(), "cancelled watch did not end within 10s");
    Equal(CodeName(grpc::StatusCode::CANCELLED), CodeName(status->error_code()), "status after cancel");
  }
  // The synchronous reader, cancelled from the thread that reads (between two Reads).
  grpc::ClientContext context;
  auto reader = workflows_->WatchWorkflow(&context, WatchOf(Idle(), false));
  WorkflowEvent event;
  Check(reader->Read(&event), "sync watch: no first event");
  context.TryCancel();
  while (reader->Read(&event)) {
  }
  Equal(CodeName(grpc::StatusCode::CANCELLED), CodeName(reader->Finish().error_code()), "sync reader's status after TryCancel");
  Equal(WorkflowState_Name(WORKFLOW_STATE_RUNNING), WorkflowState_Name(Get(Idle(), false).state()), "idle workflow state");
  return std::to_string(rounds + 1) + " watches cancelled after their first event; the channel still serves";
}

// More concurrent streams than the server's SETTINGS_MAX_CONCURRENT_STREAMS (100) on one
// channel: grpc++ queues the excess until streams end; every watch replays a finished workflow.
std::string ApiChecks::ManyStreams() {
  std::string cap = prefix_ + "-many";
  LeaseScript stream(*executors_, "cpp-checks-many-" + prefix_, cap, 1);
  stream.Welcome();
  std::string workflow_id = Submit(Query({Task("m", cap)}));
  stream.Complete(stream.Assignment().lease(), "m");
  Check(stream.Close().ok(), "lease stream did not end OK");
  int expected = -1;
  for (int round = 0; round < 20 && expected < 0; round++) {
    if (Get(workflow_id, false).state() == WORKFLOW_STATE_SUCCEEDED) {
      ListEventsRequest list;
      list.set_workflow_id(workflow_id);
      list.set_page_size(1000);
      expected = Call(&Workflows::Stub::ListEvents, list, "ListEvents").events_size();
    } else {
      std::this_thread::sleep_for(milliseconds(100));
    }
  }
  Check(expected > 0, "workflow did not succeed");
  const int n = 250;
  std::vector<std::unique_ptr<Watch>> watches;
  for (int i = 0; i < n; i++) watches.push_back(std::make_unique<Watch>(*workflows_, WatchOf(workflow_id, true), seconds(60)));
  for (auto& watch : watches) {
    std::optional<grpc::Status> status = watch->WaitEnded(seconds(60));
    Check(status && status->ok(), "a watch ended " + (status ? Describe(*status) : "not at all within 60s"));
    Equal(expected, static_cast<int>(watch->Events().size()), "events per watch");
  }
  return std::to_string(n) + " concurrent watches on one channel, each " + std::to_string(expected) + " events, all OK";
}

}  // namespace orchexample::checks
