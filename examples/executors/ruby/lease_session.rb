# frozen_string_literal: true

require 'grpc'
require 'event'

# One Lease stream (EXECUTORS.md): the requests come from a Queue through an Enumerator, which
# grpc-ruby's writer thread drains, so sends from any thread are serialised without a lock; the
# responses are handed to a block on the thread that calls #run.
class LeaseSession
  attr_reader :ended

  def initialize(stub, hello, metadata: {})
    @stub = stub
    @metadata = metadata
    @outbox = Queue.new
    @outbox << hello
    @ended = Event.new
    @op = nil
  end

  # Queues a request; after #half_close or the end of the stream, drops it.
  def write(request)
    @outbox << request
  rescue ClosedQueueError
    nil
  end

  # No more requests: the writer sends END_STREAM once the queue is empty.
  def half_close
    @outbox.close
  end

  # Sends RST_STREAM(CANCEL): the server gives this stream's leases back at once.
  def cancel
    @op&.cancel
  end

  # Runs the stream until it ends, yielding each response; returns nil when the server ended it
  # with OK, else the GRPC::BadStatus it ended with. No deadline: the stream lives for hours.
  def run(&on_response)
    requests = Enumerator.new do |yielder|
      while (request = @outbox.pop) # nil once closed and empty
        yielder << request
      end
    end
    @op = @stub.lease(requests, metadata: @metadata, return_op: true, &on_response)
    watchdog = Thread.new { close_when_status_arrives }
    @op.execute
    nil
  rescue GRPC::BadStatus => e
    e
  ensure
    @outbox.close
    @ended.set
    watchdog&.join
  end

  private

  # After an OK status, grpc-ruby's reader joins its writer thread, which waits on @outbox for
  # ever unless the queue is closed: a stream the server ended with OK before this side
  # half-closed would hang #run. Close it once the status is in.
  def close_when_status_arrives
    until @ended.wait(0.2)
      next unless @op.status

      @outbox.close
      break
    end
  end
end
