# frozen_string_literal: true

# A one-way flag that threads wait on with a timeout: Ruby 3.1's Queue#pop has no timeout (3.2 added
# one), and a worker must sleep its work time yet wake at once when the task is revoked.
class Event
  def initialize
    @mutex = Mutex.new
    @changed = ConditionVariable.new
    @set = false
  end

  # Not callable from a signal trap (Mutex): trap handlers start a thread that calls it.
  def set
    @mutex.synchronize do
      @set = true
      @changed.broadcast
    end
  end

  def set?
    @set
  end

  # Waits up to `seconds` (nil: for ever); returns whether the event is set.
  def wait(seconds = nil)
    deadline = seconds && Process.clock_gettime(Process::CLOCK_MONOTONIC) + seconds
    @mutex.synchronize do
      until @set
        left = deadline && deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)
        break if left && left <= 0
        @changed.wait(@mutex, left)
      end
      @set
    end
  end
end
