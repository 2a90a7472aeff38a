// Checks that an unmodified grpc++ client (Debian's 1.51) gets what the gRPC contract promises
// from orchestratord: unary, server-streaming and bidi calls, deadlines, metadata, message limits
// both ways, compression, rich error details, UNIMPLEMENTED, cancellation, keepalive pings and
// TLS. Each check prints one line, "PASS name (N ms): detail" or "FAIL name (N ms): why"; the
// last line is "api-checks: ok=N failed=N"; exit status 1 when one failed.
//
//   orchexecutor-api-checks --address HOST:PORT [--capability PREFIX]
//       [--tls-address HOST:PORT --tls-ca-file PEM [--tls-authority NAME]] [--only a,b]
//
// It needs a server of its own or, at least, capabilities of its own (PREFIX, default a random
// one): its Lease streams take every task that requires them.
#include <cstdio>
#include <functional>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include "checks/api_checks.h"

using orchexample::checks::ApiChecks;

int main(int argc, char** argv) {
  std::string address = "127.0.0.1:50051", prefix = "cpp-checks-" + orchexample::checks::Hex(4);
  std::string tls_address, ca_file, authority, only;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string name = argv[i];
    name = name.substr(name.find_first_not_of('-'));
    std::string value = argv[i + 1];
    if (name == "address") address = value;
    else if (name == "capability") prefix = value;
    else if (name == "tls-address") tls_address = value;
    else if (name == "tls-ca-file") ca_file = value;
    else if (name == "tls-authority") authority = value;
    else if (name == "only") only = value;
    else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  std::set<std::string> selected;
  std::istringstream names(only);
  for (std::string name; std::getline(names, name, ',');) selected.insert(name);
  auto wanted = [&](const std::string& name) { return selected.empty() || selected.count(name) > 0; };

  ApiChecks checks(address, prefix);
  std::vector<std::pair<std::string, std::function<std::string()>>> all = {
      {"unary_plan", [&] { return checks.UnaryPlan(); }},
      {"unary_submit_get_traceparent", [&] { return checks.UnarySubmitGetTraceparent(); }},
      {"bidi_lease_and_server_streaming_watch", [&] { return checks.LeaseStreamAndWatch(); }},
      {"lease_cancel_requeues", [&] { return checks.LeaseCancelRequeues(); }},
      {"deadline_exceeded", [&] { return checks.DeadlineExceeded(); }},
      {"message_over_4mib", [&] { return checks.MessageOver4MiB(); }},
      {"gzip_requests", [&] { return checks.GzipRequests(); }},
      {"large_response", [&] { return checks.LargeResponse(); }},
      {"unimplemented", [&] { return checks.Unimplemented(); }},
      {"status_details", [&] { return checks.StatusDetails(); }},
      {"cancel_watch", [&] { return checks.CancelWatch(); }},
      {"many_streams", [&] { return checks.ManyStreams(); }},
      {"keepalive_pings", [&] { return checks.KeepalivePings(); }},
  };
  if (!tls_address.empty()) all.emplace_back("tls", [&] { return checks.Tls(tls_address, ca_file, authority); });

  int ok = 0, failed = 0;
  // The keepalive check watches two connections for about 20 s: they start first, beside the rest.
  if (wanted("keepalive_pings")) {
    try {
      checks.StartKeepalive();
    } catch (const std::exception&) {  // reported by the check itself, which tries again
    }
  }
  for (auto& [name, check] : all) {
    if (!wanted(name)) continue;
    auto start = std::chrono::steady_clock::now();
    std::string line;
    try {
      std::string detail = check();
      ok++;
      line = "PASS " + name + " (" + std::to_string(orchexample::checks::MillisSince(start)) + " ms): " + detail;
    } catch (const std::exception& e) {
      failed++;
      line = "FAIL " + name + " (" + std::to_string(orchexample::checks::MillisSince(start)) + " ms): " + e.what();
    }
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  }
  checks.CancelIdle();
  std::printf("api-checks: ok=%d failed=%d\n", ok, failed);
  return failed == 0 ? 0 : 1;
}
