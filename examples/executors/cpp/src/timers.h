// One thread that runs callbacks after a delay: heartbeats, resends of reports the server could
// not apply, --die-after. Callbacks run one at a time on that thread and must not block.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

namespace orchexample {

class Timers {
 public:
  using Id = std::uint64_t;
  using Clock = std::chrono::steady_clock;

  Timers();
  ~Timers();  // drops what has not run yet; waits for a callback that is running
  Timers(const Timers&) = delete;
  Timers& operator=(const Timers&) = delete;

  Id After(std::chrono::milliseconds delay, std::function<void()> callback);
  void Cancel(Id id);  // a callback already running is not interrupted

 private:
  void Loop();

  std::mutex mutex_;
  std::condition_variable changed_;
  // Guarded by mutex_.
  std::map<std::pair<Clock::time_point, Id>, std::function<void()>> due_;
  std::map<Id, Clock::time_point> when_;
  Id next_id_ = 1;
  bool stopping_ = false;
  std::thread thread_;  // last: starts once the fields above exist
};

}  // namespace orchexample
