// The connection itself: client keepalive pings against the server's ping policy, and TLS.
#include <thread>

#include "channel.h"
#include "checks/api_checks.h"
#include "checks/lease_script.h"

namespace orchexample::checks {

using namespace orchestrator::v1;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

// The server takes client PINGs 5 s apart or more without data as fine, closer ones as strikes, and
// the third strike closes the connection (GOAWAY too_many_pings; docs/RPC.md).
constexpr milliseconds kSaneInterval{6000};
constexpr milliseconds kAbusiveInterval{1000};
// Three pings at the sane interval: the third would have been the closing strike.
constexpr milliseconds kObserveFor{3 * kSaneInterval + milliseconds(1500)};

std::shared_ptr<grpc::Channel> PingingChannel(const std::string& address, milliseconds interval) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, static_cast<int>(interval.count()));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  // grpc-core stops pinging after 2 pings without data unless told otherwise: the watch sends none.
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // Its own connection, not one shared with the checks' channel.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return OpenChannel(ChannelConfig{address, "", "", 4 << 20}, args);
}

WatchWorkflowRequest WatchOf(const std::string& workflow_id) {
  WatchWorkflowRequest request;
  request.set_workflow_id(workflow_id);
  return request;
}

}  // namespace

// Two channels, each holding an idle watch open while the other checks run.
struct ApiChecks::KeepaliveProbe {
  KeepaliveProbe(const std::string& address, const std::string& workflow_id)
      : sane_channel(PingingChannel(address, kSaneInterval)),
        abusive_channel(PingingChannel(address, kAbusiveInterval)),
        sane_stub(Workflows::NewStub(sane_channel)),
        abusive_stub(Workflows::NewStub(abusive_channel)),
        sane(*sane_stub, WatchOf(workflow_id)),
        abusive(*abusive_stub, WatchOf(workflow_id)) {}

  const std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::shared_ptr<grpc::Channel> sane_channel, abusive_channel;
  std::unique_ptr<Workflows::Stub> sane_stub, abusive_stub;
  Watch sane, abusive;
};

void ApiChecks::StartKeepalive() { keepalive_ = std::make_shared<KeepaliveProbe>(address_, Idle()); }

std::string ApiChecks::KeepalivePings() {
  if (!keepalive_) StartKeepalive();
  KeepaliveProbe& probe = *keepalive_;
  Check(probe.sane.WaitFirst(seconds(10)) && probe.abusive.WaitFirst(seconds(10)), "the watches got no first event");
  std::optional<grpc::Status> abusive = probe.abusive.WaitEnded(seconds(15));
  Check(abusive.has_value(), "pings every 1 s for 15 s: the connection was never closed");
  ExpectStatus(grpc::StatusCode::UNAVAILABLE, *abusive);
  long long abusive_ms = MillisSince(probe.started);
  auto left = kObserveFor - milliseconds(MillisSince(probe.started));
  if (left.count() > 0) std::this_thread::sleep_for(left);
  std::optional<grpc::Status> sane = probe.sane.WaitEnded(milliseconds(0));
  if (sane) throw CheckFailed("the watch on the channel pinging every 6 s ended: " + Describe(*sane));
  // The same connection still carries calls.
  grpc::ClientContext context;
  SetDeadline(context, seconds(10));
  PlanWorkflowRequest plan;
  *plan.mutable_query() = Query({Task("a", prefix_ + "-keepalive")});
  PlanWorkflowResponse response;
  ExpectOk(probe.sane_stub->PlanWorkflow(&context, plan, &response), "PlanWorkflow on the pinging channel");
  std::string detail = "pings every 6 s: watch open after " + std::to_string(MillisSince(probe.started)) +
                       " ms; every 1 s: " + Describe(*abusive) + " after " + std::to_string(abusive_ms) + " ms";
  keepalive_.reset();
  return detail;
}

std::string ApiChecks::Tls(const std::string& tls_address, const std::string& ca_file, const std::string& authority) {
  auto tls = OpenChannel(ChannelConfig{tls_address, ca_file, authority, 4 << 20});
  auto workflows = Workflows::NewStub(tls);
  grpc::ClientContext context;
  SetDeadline(context, seconds(30));
  PlanWorkflowRequest plan;
  *plan.mutable_query() = Query({Task("a", prefix_ + "-tls")});
  PlanWorkflowResponse planned;
  ExpectOk(workflows->PlanWorkflow(&context, plan, &planned), "PlanWorkflow over TLS");
  Equal(1, planned.analysis().task_count(), "task_count over TLS");
  {
    Watch watch(*workflows, WatchOf(Idle()), seconds(30));
    Check(watch.WaitFirst(seconds(10)) && watch.Events().front().type() == EVENT_TYPE_WORKFLOW_SUBMITTED, "watch over TLS");
  }
  auto executors = Executors::NewStub(tls);
  LeaseScript lease(*executors, "cpp-tls-" + prefix_, prefix_ + "-tls", 1);
  Welcome welcome = lease.Welcome();
  Check(lease.Close().ok(), "TLS lease stream did not end OK");
  // Trusting only grpc's own root list (Debian's /usr/share/grpc/roots.pem), not our test CA.
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride(authority.empty() ? "localhost" : authority);
  auto untrusted = Workflows::NewStub(grpc::CreateCustomChannel(tls_address, grpc::SslCredentials({}), args));
  grpc::ClientContext refused;
  SetDeadline(refused, seconds(30));
  grpc::Status status = ExpectStatus(grpc::StatusCode::UNAVAILABLE, untrusted->PlanWorkflow(&refused, plan, &planned));
  return "unary, server streaming and Lease (welcome " + welcome.session_id() + ") over TLS; untrusted: " + Describe(status);
}

}  // namespace orchexample::checks
