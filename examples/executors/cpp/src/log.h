// The executor's log: "HH:MM:SS [executor-id] message", one write per line, flushed, because
// tests and operators read the log as it grows.
#pragma once

#include <string>

namespace orchexample {

void SetLogName(const std::string& name);
void Log(const std::string& message);

}  // namespace orchexample
