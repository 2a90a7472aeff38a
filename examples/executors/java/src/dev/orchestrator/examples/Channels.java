package dev.orchestrator.examples;

import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.TlsChannelCredentials;
import java.io.File;
import java.io.IOException;
import java.util.concurrent.TimeUnit;

/** The channel both programs use: cleartext, or TLS trusting one CA file (ALPN h2 through the JDK). */
final class Channels {
  private Channels() {}

  static ManagedChannel open(String address, String tlsCaFile, String tlsAuthority, int maxReceiveMessageSize)
      throws IOException {
    ChannelCredentials credentials = tlsCaFile.isEmpty()
        ? InsecureChannelCredentials.create()
        : TlsChannelCredentials.newBuilder().trustManager(new File(tlsCaFile)).build();
    ManagedChannelBuilder<?> builder = Grpc.newChannelBuilder(address, credentials)
        .maxInboundMessageSize(maxReceiveMessageSize)
        // Find a dead link as soon as the server would (EXECUTORS.md, "Noticing a dead link"):
        // the server accepts pings 10 s apart or more, with or without calls.
        .keepAliveTime(20, TimeUnit.SECONDS)
        .keepAliveTimeout(10, TimeUnit.SECONDS);
    if (!tlsAuthority.isEmpty()) builder.overrideAuthority(tlsAuthority);
    return builder.build();
  }
}
