#include "flags.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <stdexcept>

namespace orchexample {

const char* const kUsage =
    "usage: orchexecutor [flags]   (each flag as -name VALUE, --name VALUE or --name=VALUE)\n"
    "  --address HOST:PORT         orchestratord gRPC address (default $ORCHESTRATOR_ADDRESS or 127.0.0.1:50051)\n"
    "  --id ID                     executor id, stable across reconnects (default cpp-<pid>)\n"
    "  --capabilities A,B          comma-separated capabilities (default echo)\n"
    "  --max-in-flight N           tasks held at once (default 1)\n"
    "  --sleep-ms N                simulated work per task (default 100)\n"
    "  --fail-probability P        probability a task fails (default 0)\n"
    "  --permanent-failures        failures are not retryable\n"
    "  --die-after N               exit at once halfway through task N (status 137, like SIGKILL)\n"
    "  --tasks N                   exit after N accepted completions (0 = run forever)\n"
    "  --token JWT                 bearer token for --auth jwt servers (default $ORCHESTRATOR_TOKEN)\n"
    "  --tls-ca-file PEM           use TLS, trusting this CA (for --grpc-tls-address)\n"
    "  --tls-authority NAME        TLS server name to verify, when it differs from the address host\n"
    "  --max-receive-message-size N  largest assignment accepted, bytes (default 4194304, gRPC's default)\n";

namespace {

std::string Env(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value && *value ? value : fallback;
}

// Whole-string numbers only: "12x" is a mistake, not 12.
template <typename T>
T Number(const std::string& flag, const std::string& text) {
  std::istringstream in(text);
  T value{};
  if (!(in >> value) || !in.eof()) throw std::invalid_argument("--" + flag + ": not a number: " + text);
  return value;
}

std::vector<std::string> SplitCommas(const std::string& text) {
  std::vector<std::string> items;
  std::istringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) items.push_back(item);
  }
  return items;
}

}  // namespace

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  f.address = Env("ORCHESTRATOR_ADDRESS", "127.0.0.1:50051");
  f.id = "cpp-" + std::to_string(getpid());
  f.token = Env("ORCHESTRATOR_TOKEN", "");
  for (int i = 1; i < argc; i++) {
    std::string arg = argv[i];
    if (arg.size() < 2 || arg[0] != '-') throw std::invalid_argument("unexpected argument " + arg);
    std::string name = arg.substr(arg[1] == '-' ? 2 : 1);
    std::string value;
    bool has_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
      has_value = true;
    }
    if (name == "help" || name == "h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (name == "permanent-failures") {
      f.permanent_failures = !has_value || value == "true";
      continue;
    }
    if (!has_value) {
      if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
      value = argv[++i];
    }
    if (name == "address") f.address = value;
    else if (name == "id") f.id = value;
    else if (name == "capabilities") f.capabilities = SplitCommas(value);
    else if (name == "max-in-flight") f.max_in_flight = Number<int>(name, value);
    else if (name == "sleep-ms") f.sleep_ms = Number<int>(name, value);
    else if (name == "fail-probability") f.fail_probability = Number<double>(name, value);
    else if (name == "die-after") f.die_after = Number<int>(name, value);
    else if (name == "tasks") f.tasks = Number<int>(name, value);
    else if (name == "token") f.token = value;
    else if (name == "tls-ca-file") f.tls_ca_file = value;
    else if (name == "tls-authority") f.tls_authority = value;
    else if (name == "max-receive-message-size") f.max_receive_message_size = Number<int>(name, value);
    else throw std::invalid_argument("unknown flag " + arg);
  }
  if (f.max_in_flight < 1) throw std::invalid_argument("--max-in-flight must be at least 1");
  return f;
}

}  // namespace orchexample
