#include "timers.h"

namespace orchexample {

Timers::Timers() : thread_([this] { Loop(); }) {}

Timers::~Timers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

Timers::Id Timers::After(std::chrono::milliseconds delay, std::function<void()> callback) {
  std::lock_guard<std::mutex> lock(mutex_);
  Id id = next_id_++;
  Clock::time_point at = Clock::now() + delay;
  due_.emplace(std::make_pair(at, id), std::move(callback));
  when_.emplace(id, at);
  changed_.notify_all();
  return id;
}

void Timers::Cancel(Id id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = when_.find(id);
  if (found == when_.end()) return;
  due_.erase(std::make_pair(found->second, id));
  when_.erase(found);
}

void Timers::Loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    if (due_.empty()) {
      changed_.wait(lock);
      continue;
    }
    auto first = due_.begin();
    if (first->first.first > Clock::now()) {
      changed_.wait_until(lock, first->first.first);
      continue;
    }
    std::function<void()> callback = std::move(first->second);
    when_.erase(first->first.second);
    due_.erase(first);
    lock.unlock();
    callback();
    lock.lock();
  }
}

}  // namespace orchexample
