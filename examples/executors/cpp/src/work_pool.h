// The threads that do the (simulated) work: as many as --max-in-flight, the most tasks the server
// hands this executor at once, so a task never waits for a thread.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace orchexample {

class WorkPool {
 public:
  explicit WorkPool(int threads);
  ~WorkPool();  // drops queued jobs; waits for running ones
  WorkPool(const WorkPool&) = delete;
  WorkPool& operator=(const WorkPool&) = delete;

  void Submit(std::function<void()> job);

 private:
  void Loop();

  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::function<void()>> jobs_;  // guarded by mutex_
  bool stopping_ = false;                    // guarded by mutex_
  std::vector<std::thread> threads_;
};

}  // namespace orchexample
