// Example orchestratord executor in C++ (grpc++ 1.51 from Debian packages), following
// docs/EXECUTORS.md: flags in README.md.
#include <cstdio>
#include <stdexcept>

#include "executor.h"
#include "flags.h"
#include "log.h"

int main(int argc, char** argv) {
  orchexample::Flags flags;
  try {
    flags = orchexample::ParseFlags(argc, argv);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "%s\n%s", e.what(), orchexample::kUsage);
    return 2;
  }
  orchexample::SetLogName(flags.id);
  try {
    return orchexample::Executor(flags).Run();
  } catch (const std::runtime_error& e) {  // a TLS file that cannot be read
    std::fprintf(stderr, "orchexecutor: %s\n", e.what());
    return 1;
  }
}
