# frozen_string_literal: true

require 'grpc'

# The channels both programs open: cleartext, or TLS trusting one CA file; gRPC's 4 MiB receive
# limit unless raised; keepalive pings.
module Channels
  MIB = 1 << 20

  module_function

  def credentials(tls_ca_file)
    return :this_channel_is_insecure if tls_ca_file.to_s.empty?

    GRPC::Core::ChannelCredentials.new(File.read(tls_ca_file))
  end

  def channel_args(tls_authority: '', max_receive_message_size: 4 * MIB)
    args = {
      'grpc.primary_user_agent' => "orchestrator-examples-ruby grpc-ruby/#{GRPC::VERSION}",
      'grpc.max_receive_message_length' => max_receive_message_size,
      # Find a dead link as soon as the server would (EXECUTORS.md, "Noticing a dead link"): the
      # server accepts pings 10 s apart or more, with or without calls.
      'grpc.keepalive_time_ms' => 20_000,
      'grpc.keepalive_timeout_ms' => 10_000
    }
    # The name the certificate must carry when it is not the address's host (an IP, say).
    args[GRPC::Core::Channel::SSL_TARGET] = tls_authority unless tls_authority.to_s.empty?
    args
  end

  # One HTTP/2 connection that several stubs share (`Stub.new(..., channel_override: channel)`):
  # without it, each stub opens its own.
  def open(address, tls_ca_file: '', tls_authority: '', max_receive_message_size: 4 * MIB)
    args = channel_args(tls_authority: tls_authority, max_receive_message_size: max_receive_message_size)
    GRPC::Core::Channel.new(address, args, credentials(tls_ca_file))
  end

  # A stub of `service` (e.g. Orchestrator::V1::Workflows) on `channel`.
  def stub(service, channel)
    # The address and credentials are ignored when a channel is given, but still required.
    service::Stub.new('unused', :this_channel_is_insecure, channel_override: channel)
  end
end
