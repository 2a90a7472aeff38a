// The executor's command line: each flag as -name VALUE, --name VALUE or --name=VALUE.
#pragma once

#include <string>
#include <vector>

namespace orchexample {

struct Flags {
  std::string address;
  std::string id;
  std::vector<std::string> capabilities{"echo"};
  int max_in_flight = 1;
  int sleep_ms = 100;
  double fail_probability = 0;
  bool permanent_failures = false;
  int die_after = 0;
  int tasks = 0;
  std::string token;
  std::string tls_ca_file;
  std::string tls_authority;
  int max_receive_message_size = 4 << 20;
};

extern const char* const kUsage;

// Throws std::invalid_argument with a message for the user; exits 0 after printing --help.
Flags ParseFlags(int argc, char** argv);

}  // namespace orchexample
