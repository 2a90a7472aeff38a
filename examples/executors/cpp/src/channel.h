// The channel both programs use: cleartext HTTP/2 (prior knowledge), or TLS trusting one CA file.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

namespace orchexample {

struct ChannelConfig {
  std::string address;
  std::string tls_ca_file;    // empty: cleartext
  std::string tls_authority;  // the TLS name to verify, when it is not the address's host
  int max_receive_message_size = 4 << 20;  // gRPC's default, said out loud
};

// `args` carries settings of the caller's own (keepalive experiments); the config's win.
std::shared_ptr<grpc::Channel> OpenChannel(const ChannelConfig& config, grpc::ChannelArguments args = {});

// The whole file; throws std::runtime_error naming it when it cannot be read.
std::string ReadFile(const std::string& path);

}  // namespace orchexample
