// What the API checks are made of: a failed assertion (CheckFailed), calls' deadlines and
// metadata, and the small workflows they submit.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "orchestrator/v1/workflows.grpc.pb.h"

namespace orchexample::checks {

constexpr int kMiB = 1 << 20;

struct CheckFailed : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline void Check(bool condition, const std::string& message) {
  if (!condition) throw CheckFailed(message);
}

std::string Show(const std::string& value);
std::string Show(long long value);
std::string Show(const google::protobuf::Message& value);
inline std::string Show(int value) { return Show(static_cast<long long>(value)); }
std::string Show(const std::vector<std::string>& value);

template <typename T>
void Equal(const T& expected, const T& actual, const std::string& what) {
  if (!(expected == actual)) throw CheckFailed(what + ": expected " + Show(expected) + ", got " + Show(actual));
}

void EqualMessage(const google::protobuf::Message& expected, const google::protobuf::Message& actual, const std::string& what);

std::string CodeName(grpc::StatusCode code);
std::string Describe(const grpc::Status& status);  // "CODE: message"

// The status of a call that must fail with `code`.
const grpc::Status& ExpectStatus(grpc::StatusCode code, const grpc::Status& status);
// Throws unless the call succeeded.
void ExpectOk(const grpc::Status& status, const std::string& what);

void SetDeadline(grpc::ClientContext& context, std::chrono::milliseconds after);
std::string Hex(int bytes);       // random, lowercase
std::string RandomBytes(size_t n);  // incompressible
long long MillisSince(std::chrono::steady_clock::time_point start);

orchestrator::v1::TaskSpec Task(const std::string& key, const std::string& capability,
                                const std::vector<std::string>& depends_on = {});
orchestrator::v1::Query Query(const std::vector<orchestrator::v1::TaskSpec>& tasks);

}  // namespace orchexample::checks
