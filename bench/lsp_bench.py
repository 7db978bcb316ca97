"""Latency of `dsl lsp` per change on a 2,000-line model: the time from sending a
textDocument/didChange to receiving the publishDiagnostics of that version (re-check + publish),
as a client sees it over stdio. Usage: lsp_bench.py DSL [changes]"""
import json, random, subprocess, sys, time

dsl = sys.argv[1]
changes = int(sys.argv[2]) if len(sys.argv) > 2 else 300

def model(lines=2000):
    head = ["// generated for bench/lsp.sh", "input 32x32x3", "let unit f = (conv f 3x3 same relu; batchnorm)"]
    body = []
    kinds = ["conv 16 3x3 same relu", "batchnorm", "unit 16", "dropout 0.1", "// a comment", "relu",
             "residual (conv 16 3x3 same relu; conv 16 3x3 same)"]
    while len(head) + len(body) < lines - 7:
        body.append(kinds[len(body) % len(kinds)])
    tail = ["globalavgpool", "dense 10 softmax", "train", "  data cifar10", "  optimizer adam", "  epochs 1", "  batch 32"]
    return head + body + tail

lines = model()
assert len(lines) == 2000, len(lines)
p = subprocess.Popen([dsl, "lsp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)

def send(m):
    b = json.dumps(m).encode()
    p.stdin.write(b"Content-Length: %d\r\n\r\n" % len(b) + b)
    p.stdin.flush()

def recv():
    n = None
    while True:
        line = p.stdout.readline()
        if not line:
            raise SystemExit("dsl lsp closed its output")
        line = line.strip()
        if not line:
            break
        if line.lower().startswith(b"content-length"):
            n = int(line.split(b":")[1])
    return json.loads(p.stdout.read(n))

def wait(pred):
    while True:
        m = recv()
        if pred(m):
            return m

uri = "file:///bench/big.cnn"
send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}})
wait(lambda m: m.get("id") == 1)
t = time.perf_counter()
send({"jsonrpc": "2.0", "method": "textDocument/didOpen",
      "params": {"textDocument": {"uri": uri, "languageId": "cnn", "version": 1, "text": "\n".join(lines) + "\n"}}})
first = wait(lambda m: m.get("method") == "textDocument/publishDiagnostics")
open_ms = (time.perf_counter() - t) * 1000
assert first["params"]["diagnostics"] == [], first["params"]["diagnostics"][:2]

# Each change edits one conv line in the middle of the file: every other change breaks its
# kernel (99x99 without padding, CNN301) and the next one mends it, so both the error and the clean path count.
convs = [i for i, l in enumerate(lines) if l.startswith("conv 16 3x3")]
random.seed(1)
latencies = {"incremental": [], "full": []}
version = 1
line = convs[0]
for i in range(changes):
    broken = i % 2 == 0
    if broken:
        line = random.choice(convs[len(convs) // 4: 3 * len(convs) // 4])
    version += 1
    mode = "full" if i % 10 == 9 else "incremental"
    lines[line] = "conv 16 99x99 relu" if broken else "conv 16 3x3 same relu"
    if mode == "full":
        change = {"text": "\n".join(lines) + "\n"}
    else:
        old = "3x3 same" if broken else "99x99"
        change = {"range": {"start": {"line": line, "character": 8}, "end": {"line": line, "character": 8 + len(old)}},
                  "text": "99x99" if broken else "3x3 same"}
    t = time.perf_counter()
    send({"jsonrpc": "2.0", "method": "textDocument/didChange",
          "params": {"textDocument": {"uri": uri, "version": version}, "contentChanges": [change]}})
    m = wait(lambda m: m.get("method") == "textDocument/publishDiagnostics" and m["params"].get("version") == version)
    latencies[mode].append((time.perf_counter() - t) * 1000)
    codes = [d["code"] for d in m["params"]["diagnostics"]]
    assert codes == (["CNN301"] if broken else []), (i, codes)

send({"jsonrpc": "2.0", "id": 2, "method": "shutdown"})
wait(lambda m: m.get("id") == 2)
send({"jsonrpc": "2.0", "method": "exit"})
p.wait(10)

def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]

print("file: 2,000 lines; open (first check + publish): %.1f ms" % open_ms)
warm = 20  # the first changes run while .NET is still compiling the checker's code
for mode, xs in latencies.items():
    xs = xs[warm:] if mode == "incremental" else xs[2:]
    print("%-11s changes: %3d  p50 %.1f ms  p95 %.1f ms  max %.1f ms" % (mode, len(xs), pct(xs, 50), pct(xs, 95), max(xs)))
all_ = latencies["incremental"][warm:] + latencies["full"][2:]
print("RESULT p95_ms=%.1f target_ms=50 %s" % (pct(all_, 95), "met" if pct(all_, 95) <= 50 else "MISSED"))
