# frozen_string_literal: true

# A queue whose #pop gives up after a timeout (Ruby 3.1's Queue#pop cannot: 3.2 added `timeout:`).
class Mailbox
  def initialize
    @mutex = Mutex.new
    @arrived = ConditionVariable.new
    @items = []
  end

  def push(item)
    @mutex.synchronize do
      @items << item
      @arrived.signal
    end
  end

  # The oldest item, or `timed_out` after `seconds`.
  def pop(seconds, timed_out: nil)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + seconds
    @mutex.synchronize do
      while @items.empty?
        left = deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)
        return timed_out if left <= 0

        @arrived.wait(@mutex, left)
      end
      @items.shift
    end
  end
end
