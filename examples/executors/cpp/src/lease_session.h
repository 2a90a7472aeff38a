// One Lease stream of the executor. grpc++'s synchronous ClientReaderWriter allows one Read and
// one Write in flight at a time, from different threads: the reading thread is the one that runs
// the session, and every write (heartbeats, progress, reports, drain, half-close) goes through
// Send() or HalfClose(), serialised by one mutex. Nothing is written once the stream is closed.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "orchestrator/v1/executors.grpc.pb.h"
#include "timers.h"

namespace orchexample {

class LeaseSession : public std::enable_shared_from_this<LeaseSession> {
 public:
  // Opens the stream: no deadline (it lives for hours), wait-for-ready so that a reconnect while
  // the channel backs off waits for the server instead of failing at once (EXECUTORS.md,
  // Reconnecting). Blocks until the call has started.
  LeaseSession(orchestrator::v1::Executors::Stub& stub, const std::string& token);

  bool Send(const orchestrator::v1::LeaseRequest& request);  // false once closed
  void HalfClose();                                           // no write after this
  bool Read(orchestrator::v1::LeaseResponse* response);       // the session's own thread only
  grpc::Status Finish();  // after Read returned false: stops heartbeats, closes, the status

  // A heartbeat{} (all leases on this stream) every `interval`, or every `shortest_ttl()` / 3 when
  // that is sooner (EXECUTORS.md step 2: a task may be granted a TTL at or below the interval),
  // until Finish. `shortest_ttl` (zero: no lease held) is called without the write lock held.
  using ShortestTtl = std::function<std::chrono::milliseconds()>;
  void StartHeartbeats(Timers& timers, std::chrono::milliseconds interval, ShortestTtl shortest_ttl);

 private:
  void ScheduleHeartbeat(Timers& timers, std::chrono::milliseconds interval, ShortestTtl shortest_ttl);

  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<orchestrator::v1::LeaseRequest, orchestrator::v1::LeaseResponse>> stream_;
  std::mutex write_mutex_;
  bool closed_ = false;  // guarded by write_mutex_
  Timers* timers_ = nullptr;  // guarded by write_mutex_, with heartbeat_
  Timers::Id heartbeat_ = 0;
  Timers::Clock::time_point last_heartbeat_;  // guarded by write_mutex_
};

}  // namespace orchexample
