#include "channel.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace orchexample {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

std::shared_ptr<grpc::Channel> OpenChannel(const ChannelConfig& config, grpc::ChannelArguments args) {
  args.SetMaxReceiveMessageSize(config.max_receive_message_size);
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (!config.tls_ca_file.empty()) {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = ReadFile(config.tls_ca_file);
    credentials = grpc::SslCredentials(options);
    // Both the name checked in the certificate and the :authority sent.
    if (!config.tls_authority.empty()) args.SetSslTargetNameOverride(config.tls_authority);
  }
  return grpc::CreateCustomChannel(config.address, credentials, args);
}

}  // namespace orchexample
