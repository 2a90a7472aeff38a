import sys, os, signal; sys.path.insert(0,'/tmp/bb2'); from lib import *
C=['bb.t44.'+str(uuid.uuid4())[:8]]
st = Stream('e44', caps=C, max_in_flight=2, autohb=1); st.next('welcome')
wid = submit([task('a',caps=C), task('b',caps=C)]).workflow.workflow_id
A = {}
while len(A) < 2:
    m = st.next('assignment'); A[m.assignment.spec.key] = m.assignment
time.sleep(1)
os.kill(int(open('/tmp/bb2/server.pid').read()), signal.SIGKILL); st.t.join(3); print(ts(), 'A killed; stream', st.status())
chB = grpc.insecure_channel('127.0.0.1:56122')
sB = Stream('e44', caps=C, max_in_flight=2, resume=[A['a'].lease, A['b'].lease], channel=chB, autohb=1)
print(ts(), 'B welcome', s(sB.next('welcome'))[:400])
time.sleep(8)
for m in iter(lambda: sB.next(timeout=0.1), None): print(ts(), m.WhichOneof('kind'), s(m)[:200])
sB.complete(A['a'].lease, b'"a"'); print(ts(), s(sB.next('ack')))
sB.complete(A['b'].lease, b'"b"'); print(ts(), s(sB.next('ack')))
time.sleep(0.3)
w = WG.WorkflowsStub(chB).GetWorkflow(W.GetWorkflowRequest(workflow_id=wid, include_tasks=True)).workflow
print(WF.WorkflowState.Name(w.state), [(t.spec.key, WF.TaskState.Name(t.state), t.attempt) for t in w.tasks])
sB.close()
