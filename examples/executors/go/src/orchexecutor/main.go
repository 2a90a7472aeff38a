// Example orchestratord executor in Go (grpc-go 1.33 from Debian), following docs/EXECUTORS.md.
//
// One Lease stream: hello, then welcome; heartbeats on a timer at welcome.heartbeat_interval_ms
// (or every third of the shortest lease TTL held, when that is sooner: EXECUTORS.md step 2);
// each assignment runs in its own goroutine (at most -max-in-flight), then is reported once with
// its lease token; revocations cancel the work; refused acks drop the result. When the stream
// breaks it reconnects with backoff and lists its in-flight leases in hello.resume.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	pb "orchestrator/gen/orchestratorv1"
)

type task struct {
	lease  *pb.LeaseToken
	cancel context.CancelFunc
	ttl    time.Duration // what the lease was granted with (Assignment.lease_ttl_ms)
}

type executor struct {
	id           string
	capabilities []string
	maxInFlight  int
	sleep        time.Duration
	failProb     float64
	permanent    bool
	dieAfter     int
	stopAfter    int
	token        string // bearer JWT for `orchestratord --auth jwt`; empty = none

	mu        sync.Mutex
	inFlight  map[string]*task
	unacked   map[string]*pb.LeaseRequest
	send      chan *pb.LeaseRequest // the current stream's outbox; nil between streams
	ttlWake   chan struct{}         // an assignment with a short TTL: the heartbeat loop recomputes its wait
	started   int
	completed int
	done      chan struct{}
}

func (e *executor) logf(format string, args ...interface{}) {
	log.Printf("[%s] %s", e.id, fmt.Sprintf(format, args...))
}

// session runs one Lease stream until it ends; returns nil when the executor should stop.
func (e *executor) session(client pb.ExecutorsClient) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if e.token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+e.token)
	}
	stream, err := client.Lease(ctx)
	if err != nil {
		return err
	}
	e.mu.Lock()
	var resume []*pb.LeaseToken
	for _, t := range e.inFlight {
		resume = append(resume, t.lease)
	}
	e.mu.Unlock()
	hello := &pb.LeaseRequest{Kind: &pb.LeaseRequest_Hello{Hello: &pb.ExecutorHello{
		ExecutorId: e.id, Capabilities: e.capabilities, MaxInFlight: int32(e.maxInFlight),
		Resume: resume, Version: "examples/go 1", Labels: map[string]string{"language": "go"},
	}}}
	if err := stream.Send(hello); err != nil {
		return err
	}
	outbox := make(chan *pb.LeaseRequest, 1024)
	// One writer goroutine: grpc-go allows one concurrent Send per stream.
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case msg, ok := <-outbox:
				if !ok {
					stream.CloseSend()
					return
				}
				if err := stream.Send(msg); err != nil {
					return
				}
			}
		}
	}()
	defer func() {
		e.mu.Lock()
		if e.send == outbox {
			e.send = nil
		}
		e.mu.Unlock()
	}()
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			select {
			case <-e.done:
				return nil
			default:
				return fmt.Errorf("stream ended by the server")
			}
		}
		if err != nil {
			return err
		}
		switch kind := resp.Kind.(type) {
		case *pb.LeaseResponse_Welcome:
			w := kind.Welcome
			e.logf("welcome session=%s heartbeat=%dms ttl=%dms resumed=%d rejected=%d",
				w.SessionId, w.HeartbeatIntervalMs, w.LeaseTtlMs, len(w.Resumed), len(w.RejectedResumes))
			for _, l := range w.RejectedResumes {
				e.abandon(l.TaskId, "resume rejected")
			}
			e.mu.Lock()
			e.send = outbox
			for _, l := range w.Resumed {
				if report, ok := e.unacked[l.TaskId]; ok {
					outbox <- report
				}
			}
			e.mu.Unlock()
			interval := time.Duration(w.HeartbeatIntervalMs) * time.Millisecond
			if interval <= 0 {
				interval = time.Second
			}
			go e.heartbeats(ctx, outbox, interval)
		case *pb.LeaseResponse_Assignment:
			e.assign(kind.Assignment)
		case *pb.LeaseResponse_Revocation:
			e.logf("revoked task=%s token=%d: %s", kind.Revocation.Lease.TaskId, kind.Revocation.Lease.FencingToken, kind.Revocation.Reason)
			e.abandon(kind.Revocation.Lease.TaskId, "revoked")
		case *pb.LeaseResponse_Ack:
			ack := kind.Ack
			if !ack.Accepted && ack.Code == codeUnavailable {
				// Not applied (the server's database was unreachable): the lease is still ours;
				// send the report again shortly (EXECUTORS.md, "Fencing tokens").
				e.logf("ack task=%s token=%d not applied (%s); sending it again in %s", ack.Lease.TaskId, ack.Lease.FencingToken, ack.Message, resendAfter)
				lease := ack.Lease
				time.AfterFunc(resendAfter, func() {
					e.mu.Lock()
					report, ok := e.unacked[lease.TaskId]
					e.mu.Unlock()
					if ok && reportLease(report).GetFencingToken() == lease.FencingToken {
						e.enqueue(outbox, report)
					}
				})
				continue
			}
			e.mu.Lock()
			delete(e.unacked, ack.Lease.TaskId)
			delete(e.inFlight, ack.Lease.TaskId)
			finished := e.stopAfter > 0 && e.completed >= e.stopAfter && len(e.unacked) == 0
			e.mu.Unlock()
			if ack.Accepted {
				e.logf("ack task=%s token=%d accepted", ack.Lease.TaskId, ack.Lease.FencingToken)
			} else {
				e.logf("ack task=%s token=%d REFUSED code=%d: %s", ack.Lease.TaskId, ack.Lease.FencingToken, ack.Code, ack.Message)
			}
			if finished {
				e.stop(outbox)
			}
		}
	}
}

// codeUnavailable is ReportAck.code of a report the server could not apply; resendAfter is how
// long the executor waits before sending it again.
const (
	codeUnavailable = 14
	resendAfter     = time.Second
)

// reportLease is the lease a completion or failure report names.
func reportLease(report *pb.LeaseRequest) *pb.LeaseToken {
	switch kind := report.Kind.(type) {
	case *pb.LeaseRequest_Completion:
		return kind.Completion.Lease
	case *pb.LeaseRequest_Failure:
		return kind.Failure.Lease
	}
	return nil
}

func (e *executor) enqueue(outbox chan *pb.LeaseRequest, msg *pb.LeaseRequest) {
	defer func() { recover() }() // the outbox may have been closed by stop()
	select {
	case outbox <- msg:
	default: // the writer is stuck; the stream is about to fail anyway
	}
}

func (e *executor) stop(outbox chan *pb.LeaseRequest) {
	select {
	case <-e.done:
	default:
		close(e.done)
		close(outbox) // half-close: the server ends the stream
	}
}

func (e *executor) assign(a *pb.Assignment) {
	ctx, cancel := context.WithCancel(context.Background())
	e.mu.Lock()
	e.inFlight[a.Lease.TaskId] = &task{lease: a.Lease, cancel: cancel, ttl: time.Duration(a.LeaseTtlMs) * time.Millisecond}
	e.started++
	number := e.started
	e.mu.Unlock()
	select {
	case e.ttlWake <- struct{}{}:
	default: // a wake is already pending
	}
	e.logf("assigned task=%s key=%s token=%d attempt=%d/%d", a.Lease.TaskId, a.Spec.GetKey(), a.Lease.FencingToken, a.Attempt, a.MaxAttempts)
	go e.work(ctx, a, number)
}

// heartbeats sends an empty heartbeat (every lease on this stream) at welcome's interval, or every
// third of the shortest TTL among the leases held when that is sooner: a task may be granted a TTL
// at or below the interval, and would lapse between heartbeats.
func (e *executor) heartbeats(ctx context.Context, outbox chan *pb.LeaseRequest, interval time.Duration) {
	last := time.Now()
	for {
		timer := time.NewTimer(time.Until(last.Add(e.heartbeatEvery(interval))))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-e.done:
			timer.Stop()
			return
		case <-e.ttlWake:
			timer.Stop()
		case <-timer.C:
			e.enqueue(outbox, &pb.LeaseRequest{Kind: &pb.LeaseRequest_Heartbeat{Heartbeat: &pb.HeartbeatSignal{}}})
			last = time.Now()
		}
	}
}

func (e *executor) heartbeatEvery(interval time.Duration) time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	every := interval
	for _, t := range e.inFlight {
		if t.ttl > 0 && t.ttl/3 < every {
			every = t.ttl / 3
		}
	}
	if every < 50*time.Millisecond {
		every = 50 * time.Millisecond
	}
	return every
}

func (e *executor) abandon(taskID, why string) {
	e.mu.Lock()
	t, ok := e.inFlight[taskID]
	delete(e.inFlight, taskID)
	delete(e.unacked, taskID)
	e.mu.Unlock()
	if ok {
		t.cancel()
		e.logf("abandoned task=%s (%s)", taskID, why)
	}
}

func (e *executor) work(ctx context.Context, a *pb.Assignment, number int) {
	if e.dieAfter > 0 && number == e.dieAfter {
		time.Sleep(e.sleep / 2)
		e.logf("dying mid-task task=%s", a.Lease.TaskId)
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}
	select {
	case <-ctx.Done():
		return
	case <-time.After(e.sleep):
	}
	var report *pb.LeaseRequest
	outcome := "completion"
	if rand.Float64() < e.failProb {
		outcome = "failure"
		report = &pb.LeaseRequest{Kind: &pb.LeaseRequest_Failure{Failure: &pb.TaskFailure{
			Lease: a.Lease, Message: "simulated failure", Code: "SIMULATED", Retryable: !e.permanent}}}
	} else {
		keys := make([]string, 0, len(a.UpstreamResults))
		for k := range a.UpstreamResults {
			keys = append(keys, k)
		}
		result, _ := json.Marshal(map[string]interface{}{"executor": e.id, "key": a.Spec.GetKey(), "attempt": a.Attempt, "upstream": keys})
		report = &pb.LeaseRequest{Kind: &pb.LeaseRequest_Completion{Completion: &pb.TaskCompletion{Lease: a.Lease, Result: result}}}
	}
	e.mu.Lock()
	if _, ok := e.inFlight[a.Lease.TaskId]; !ok {
		e.mu.Unlock()
		return // revoked while working
	}
	e.unacked[a.Lease.TaskId] = report
	if outcome == "completion" {
		e.completed++
	}
	outbox := e.send
	e.mu.Unlock()
	e.logf("report %s task=%s token=%d", outcome, a.Lease.TaskId, a.Lease.FencingToken)
	if outbox != nil {
		e.enqueue(outbox, report) // otherwise resent after the reconnect's welcome
	}
}

func main() {
	address := flag.String("address", "127.0.0.1:50051", "orchestratord host:port")
	id := flag.String("id", fmt.Sprintf("go-%d", os.Getpid()), "executor id")
	caps := flag.String("capabilities", "echo", "comma-separated capabilities")
	maxInFlight := flag.Int("max-in-flight", 1, "tasks run at once")
	sleepMs := flag.Int("sleep-ms", 100, "simulated work per task")
	failProb := flag.Float64("fail-probability", 0, "probability a task fails")
	permanent := flag.Bool("permanent-failures", false, "failures are not retryable")
	dieAfter := flag.Int("die-after", 0, "SIGKILL itself halfway through task N")
	tasks := flag.Int("tasks", 0, "exit after N accepted completions (0 = forever)")
	token := flag.String("token", os.Getenv("ORCHESTRATOR_TOKEN"), "bearer JWT (role executor) for --auth jwt servers; default $ORCHESTRATOR_TOKEN")
	flag.Parse()
	log.SetFlags(log.Ltime)

	e := &executor{
		id: *id, capabilities: strings.Split(*caps, ","), maxInFlight: *maxInFlight,
		sleep: time.Duration(*sleepMs) * time.Millisecond, failProb: *failProb, permanent: *permanent,
		dieAfter: *dieAfter, stopAfter: *tasks, token: *token,
		inFlight: map[string]*task{}, unacked: map[string]*pb.LeaseRequest{}, done: make(chan struct{}),
		ttlWake: make(chan struct{}, 1),
	}
	conn, err := grpc.Dial(*address, grpc.WithInsecure())
	if err != nil {
		log.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	client := pb.NewExecutorsClient(conn)
	e.logf("connecting to %s capabilities=%v max_in_flight=%d", *address, e.capabilities, e.maxInFlight)
	backoff := 200 * time.Millisecond
	for {
		err := e.session(client)
		select {
		case <-e.done:
			e.logf("stopped after %d completions", e.completed)
			return
		default:
		}
		e.logf("stream failed: %v; reconnecting in %v", err, backoff)
		time.Sleep(backoff)
		if backoff *= 2; backoff > 5*time.Second {
			backoff = 5 * time.Second
		}
	}
}
