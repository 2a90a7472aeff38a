#include "executor.h"

#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <random>
#include <set>
#include <thread>

#include "channel.h"
#include "log.h"

namespace orchexample {

using orchestrator::v1::Assignment;
using orchestrator::v1::LeaseRequest;
using orchestrator::v1::LeaseResponse;
using orchestrator::v1::LeaseToken;
using orchestrator::v1::ReportAck;
using orchestrator::v1::Welcome;
using std::chrono::milliseconds;

namespace {

// ReportAck.code of a report the server could not apply (database unreachable): send it again.
constexpr int kCodeUnavailable = 14;
constexpr milliseconds kResendAfter{1000};

std::string Describe(const LeaseToken& lease) {
  return "task=" + lease.task_id() + " token=" + std::to_string(lease.fencing_token());
}

std::string Json(const std::string& text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
      out += escaped;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

LeaseToken ReportLease(const LeaseRequest& report) {
  return report.has_completion() ? report.completion().lease() : report.failure().lease();
}

}  // namespace

// One assignment being worked on: a work thread sleeps on it until done or cancelled.
struct Executor::Work {
  explicit Work(Assignment a) : assignment(std::move(a)) {}

  // False when cancelled first.
  bool Sleep(milliseconds duration) {
    std::unique_lock<std::mutex> lock(mutex);
    return !cancelled_changed.wait_for(lock, duration, [this] { return cancelled; });
  }

  void Cancel() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      cancelled = true;
    }
    cancelled_changed.notify_all();
  }

  const Assignment assignment;
  std::mutex mutex;
  std::condition_variable cancelled_changed;
  bool cancelled = false;  // guarded by mutex
};

Executor::Executor(Flags flags)
    : flags_(std::move(flags)), pool_(std::max(1, std::min(flags_.max_in_flight, 64))) {
  grpc::ChannelArguments args;
  // Find a dead link as soon as the server would (EXECUTORS.md, "Noticing a dead link"): it
  // accepts pings 10 s apart or more.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  ChannelConfig config{flags_.address, flags_.tls_ca_file, flags_.tls_authority, flags_.max_receive_message_size};
  stub_ = orchestrator::v1::Executors::NewStub(OpenChannel(config, args));
}

int Executor::Run() {
  std::string capabilities;
  for (const std::string& c : flags_.capabilities) capabilities += (capabilities.empty() ? "" : ",") + c;
  Log("connecting to " + flags_.address + (flags_.tls_ca_file.empty() ? "" : " (TLS)") + " capabilities=" + capabilities +
      " max_in_flight=" + std::to_string(flags_.max_in_flight));
  milliseconds backoff{200};
  while (true) {
    grpc::Status status = RunSession();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (done_) break;
    }
    std::string why = status.ok() ? "stream ended by the server"
                                  : "code=" + std::to_string(status.error_code()) + " " + status.error_message();
    Log("stream failed: " + why + "; reconnecting in " + std::to_string(backoff.count()) + "ms");
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, milliseconds(5000));
  }
  std::lock_guard<std::mutex> lock(mutex_);
  Log("stopped after " + std::to_string(completed_) + " completions");
  return 0;
}

grpc::Status Executor::RunSession() {
  LeaseRequest hello;
  auto* h = hello.mutable_hello();
  h->set_executor_id(flags_.id);
  for (const std::string& c : flags_.capabilities) h->add_capabilities(c);
  h->set_max_in_flight(flags_.max_in_flight);
  h->set_version("examples/cpp 1");
  (*h->mutable_labels())["language"] = "cpp";
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [task_id, work] : in_flight_) *h->add_resume() = work->assignment.lease();
  }
  auto session = std::make_shared<LeaseSession>(*stub_, flags_.token);
  session->Send(hello);
  LeaseResponse response;
  while (session->Read(&response)) {
    switch (response.kind_case()) {
      case LeaseResponse::kWelcome:
        OnWelcome(session, response.welcome());
        break;
      case LeaseResponse::kAssignment:
        OnAssignment(session, response.assignment());
        break;
      case LeaseResponse::kRevocation:
        Log("revoked " + Describe(response.revocation().lease()) + ": " + response.revocation().reason());
        Abandon(response.revocation().lease(), "revoked");
        break;
      case LeaseResponse::kAck:
        OnAck(session, response.ack());
        break;
      case LeaseResponse::kHeartbeatAck:
        for (const auto& status : response.heartbeat_ack().leases()) {
          if (!status.valid()) Log("heartbeat ack: lease no longer valid " + Describe(status.lease()));
        }
        break;
      default:  // a kind newer than this example: ignore it
        break;
    }
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (current_ == session) current_.reset();
  }
  return session->Finish();
}

void Executor::OnWelcome(const std::shared_ptr<LeaseSession>& session, const Welcome& w) {
  Log("welcome session=" + w.session_id() + " heartbeat=" + std::to_string(w.heartbeat_interval_ms()) +
      "ms ttl=" + std::to_string(w.lease_ttl_ms()) + "ms resumed=" + std::to_string(w.resumed_size()) +
      " rejected=" + std::to_string(w.rejected_resumes_size()) + " server=" + w.server_version());
  for (const LeaseToken& lease : w.rejected_resumes()) Abandon(lease, "resume rejected");
  std::vector<LeaseRequest> resend;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    current_ = session;
    pending_progress_acks_.clear();  // the old stream's acks never come on this one
    for (const LeaseToken& lease : w.resumed()) {
      auto report = unacked_.find(lease.task_id());
      if (report != unacked_.end()) resend.push_back(report->second);
    }
  }
  for (const LeaseRequest& report : resend) session->Send(report);
  session->StartHeartbeats(timers_, milliseconds(w.heartbeat_interval_ms() > 0 ? w.heartbeat_interval_ms() : 1000), [this] {
    std::lock_guard<std::mutex> lock(mutex_);
    milliseconds shortest(0);
    for (const auto& [task_id, work] : in_flight_) {
      const milliseconds ttl(work->assignment.lease_ttl_ms());
      if (ttl.count() > 0 && (shortest.count() == 0 || ttl < shortest)) shortest = ttl;
    }
    return shortest;
  });
}

void Executor::OnAssignment(const std::shared_ptr<LeaseSession>& session, const Assignment& a) {
  auto work = std::make_shared<Work>(a);
  int number;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    in_flight_[a.lease().task_id()] = work;
    pending_progress_acks_[a.lease().task_id()]++;
    number = ++started_;
  }
  Log("assigned " + Describe(a.lease()) + " key=" + a.spec().key() + " attempt=" + std::to_string(a.attempt()) + "/" +
      std::to_string(a.max_attempts()));
  LeaseRequest progress;
  *progress.mutable_progress()->mutable_lease() = a.lease();
  progress.mutable_progress()->set_fraction(0);
  progress.mutable_progress()->set_message("started by " + flags_.id);
  session->Send(progress);
  if (flags_.die_after > 0 && number == flags_.die_after) {
    LeaseToken lease = a.lease();
    timers_.After(milliseconds(flags_.sleep_ms / 2), [lease] {
      Log("dying mid-task " + Describe(lease));
      _exit(137);  // no clean-up at all, like SIGKILL
    });
    return;
  }
  pool_.Submit([this, work] {
    if (work->Sleep(milliseconds(flags_.sleep_ms))) Finish(work);
  });
}

LeaseRequest Executor::Outcome(const Assignment& a) {
  thread_local std::mt19937_64 random{std::random_device{}()};
  LeaseRequest report;
  if (std::uniform_real_distribution<double>(0, 1)(random) < flags_.fail_probability) {
    auto* failure = report.mutable_failure();
    *failure->mutable_lease() = a.lease();
    failure->set_message("simulated failure");
    failure->set_code("SIMULATED");
    failure->set_retryable(!flags_.permanent_failures);
    return report;
  }
  // What the Python, Go and Java examples write: who, which task, which attempt, which upstream results it saw.
  std::set<std::string> upstream;
  for (const auto& [key, result] : a.upstream_results()) upstream.insert(key);
  std::string list;
  for (const std::string& key : upstream) list += (list.empty() ? "" : ",") + Json(key);
  auto* completion = report.mutable_completion();
  *completion->mutable_lease() = a.lease();
  completion->set_result("{\"executor\":" + Json(flags_.id) + ",\"key\":" + Json(a.spec().key()) +
                         ",\"attempt\":" + std::to_string(a.attempt()) + ",\"upstream\":[" + list + "]}");
  return report;
}

void Executor::Finish(const std::shared_ptr<Work>& work) {
  const LeaseToken& lease = work->assignment.lease();
  LeaseRequest report = Outcome(work->assignment);
  std::shared_ptr<LeaseSession> session;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto held = in_flight_.find(lease.task_id());
    if (held == in_flight_.end() || held->second != work) return;  // revoked meanwhile
    unacked_[lease.task_id()] = report;
    if (report.has_completion()) completed_++;
    session = current_;
  }
  Log(std::string("report ") + (report.has_completion() ? "completion " : "failure ") + Describe(lease));
  if (session) session->Send(report);  // otherwise sent again after the reconnect's welcome
}

void Executor::OnAck(const std::shared_ptr<LeaseSession>& session, const ReportAck& ack) {
  const std::string& task_id = ack.lease().task_id();
  bool progress_ack = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // Reports of one lease are applied in order, so a task's first ack answers its progress.
    auto due = pending_progress_acks_.find(task_id);
    if (due != pending_progress_acks_.end()) {
      progress_ack = true;
      if (--due->second <= 0) pending_progress_acks_.erase(due);
    }
  }
  if (progress_ack) {
    if (!ack.accepted()) {
      Log("progress ack " + Describe(ack.lease()) + " refused code=" + std::to_string(ack.code()) + ": " + ack.message());
    }
    return;
  }
  if (!ack.accepted() && ack.code() == kCodeUnavailable) {
    // Not applied: the lease is still ours (EXECUTORS.md, Fencing tokens).
    Log("ack " + Describe(ack.lease()) + " not applied (" + ack.message() + "); sending it again in " +
        std::to_string(kResendAfter.count()) + "ms");
    ResendLater(ack.lease());
    return;
  }
  bool finished;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    unacked_.erase(task_id);
    in_flight_.erase(task_id);
    finished = flags_.tasks > 0 && completed_ >= flags_.tasks && unacked_.empty() && !done_;
    if (finished) done_ = true;
  }
  if (ack.accepted()) Log("ack " + Describe(ack.lease()) + " accepted");
  else Log("ack " + Describe(ack.lease()) + " REFUSED code=" + std::to_string(ack.code()) + ": " + ack.message());
  if (finished) {
    // Drain (no new assignment), then half-close: the server ends the stream with OK.
    LeaseRequest drain;
    drain.mutable_drain();
    session->Send(drain);
    session->HalfClose();
  }
}

void Executor::ResendLater(const LeaseToken& lease) {
  timers_.After(kResendAfter, [this, lease] {
    LeaseRequest report;
    std::shared_ptr<LeaseSession> target;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto unacked = unacked_.find(lease.task_id());
      if (unacked == unacked_.end() || ReportLease(unacked->second).fencing_token() != lease.fencing_token()) return;
      report = unacked->second;
      target = current_;
    }
    if (target) target->Send(report);
  });
}

void Executor::Abandon(const LeaseToken& lease, const std::string& why) {
  std::shared_ptr<Work> work;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto held = in_flight_.find(lease.task_id());
    // Keyed by (task, token): a revocation of an older attempt leaves the newer one alone.
    if (held == in_flight_.end() || held->second->assignment.lease().fencing_token() != lease.fencing_token()) return;
    work = held->second;
    in_flight_.erase(held);
    unacked_.erase(lease.task_id());
    pending_progress_acks_.erase(lease.task_id());
  }
  work->Cancel();
  Log("abandoned " + Describe(lease) + " (" + why + ")");
}

}  // namespace orchexample
