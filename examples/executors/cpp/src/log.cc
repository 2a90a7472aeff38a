#include "log.h"

#include <cstdio>
#include <ctime>
#include <mutex>

namespace orchexample {
namespace {
std::mutex mutex;
std::string name;  // guarded by mutex
}  // namespace

void SetLogName(const std::string& value) {
  std::lock_guard<std::mutex> lock(mutex);
  name = value;
}

void Log(const std::string& message) {
  std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char clock[16];
  std::strftime(clock, sizeof clock, "%H:%M:%S", &local);
  std::lock_guard<std::mutex> lock(mutex);
  std::string line = std::string(clock) + " [" + name + "] " + message + "\n";
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fflush(stdout);
}

}  // namespace orchexample
