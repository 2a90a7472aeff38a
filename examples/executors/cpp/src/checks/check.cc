#include "checks/check.h"

#include <google/protobuf/util/message_differencer.h>

#include <random>

namespace orchexample::checks {

std::string Show(const std::string& value) { return "\"" + value + "\""; }
std::string Show(long long value) { return std::to_string(value); }
std::string Show(const google::protobuf::Message& value) { return "{" + value.ShortDebugString() + "}"; }

std::string Show(const std::vector<std::string>& value) {
  std::string out = "[";
  for (const std::string& item : value) out += (out.size() > 1 ? ", " : "") + item;
  return out + "]";
}

void EqualMessage(const google::protobuf::Message& expected, const google::protobuf::Message& actual, const std::string& what) {
  if (!google::protobuf::util::MessageDifferencer::Equals(expected, actual)) {
    throw CheckFailed(what + ": expected " + Show(expected) + ", got " + Show(actual));
  }
}

std::string CodeName(grpc::StatusCode code) {
  static const char* const names[] = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
                                      "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
                                      "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
                                      "UNAUTHENTICATED"};
  int index = static_cast<int>(code);
  return index >= 0 && index <= 16 ? names[index] : "code " + std::to_string(index);
}

std::string Describe(const grpc::Status& status) {
  return CodeName(status.error_code()) + (status.error_message().empty() ? "" : ": " + status.error_message());
}

const grpc::Status& ExpectStatus(grpc::StatusCode code, const grpc::Status& status) {
  if (status.ok()) throw CheckFailed("expected " + CodeName(code) + ", the call succeeded");
  if (status.error_code() != code) throw CheckFailed("expected " + CodeName(code) + ", got " + Describe(status));
  return status;
}

void ExpectOk(const grpc::Status& status, const std::string& what) {
  if (!status.ok()) throw CheckFailed(what + " failed: " + Describe(status));
}

void SetDeadline(grpc::ClientContext& context, std::chrono::milliseconds after) {
  context.set_deadline(std::chrono::system_clock::now() + after);
}

std::string RandomBytes(size_t n) {
  thread_local std::mt19937_64 random{std::random_device{}()};
  std::string bytes(n, '\0');
  for (char& b : bytes) b = static_cast<char>(random());
  return bytes;
}

std::string Hex(int bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : RandomBytes(bytes)) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

long long MillisSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
}

orchestrator::v1::TaskSpec Task(const std::string& key, const std::string& capability,
                                const std::vector<std::string>& depends_on) {
  orchestrator::v1::TaskSpec task;
  task.set_key(key);
  task.add_required_capabilities(capability);
  for (const std::string& d : depends_on) task.add_depends_on(d);
  return task;
}

orchestrator::v1::Query Query(const std::vector<orchestrator::v1::TaskSpec>& tasks) {
  orchestrator::v1::Query query;
  for (const auto& task : tasks) *query.mutable_graph()->add_tasks() = task;
  return query;
}

}  // namespace orchexample::checks
