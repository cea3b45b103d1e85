"""End-to-end bench on realistic mail: starts `postdesk serve` itself (a temp site: the example
config, SQLite in the temp folder, `outgoing: smtp` to a relay sink), sends a realistic corpus
(bench/corpus.py: German 0.5–3 KB bodies, 25 % HTML alternative, 10 % 20 KB attachment, one
sender per mail) over N SMTP connections and measures

- accepted mails/s and p50/p99 accept latency (DATA sent to 250 received),
- end-to-end mails/s: until each requester's acknowledgement has left through the relay (the
  sink, a separate process, has received it).

    .venv/bin/python bench/e2e.py --mails 600                     # redaction on, then off
    .venv/bin/python bench/e2e.py --mails 600 --redaction off --keep /tmp/site
    .venv/bin/python bench/e2e.py --serve-prefix "py-spy record -o p.svg --subprocesses --"

Besides the rates it prints the CPU seconds each server process (serve, worker, prepare) spent
on the measured mails, which says where the machine's two cores went. Figures are indicative
only on a machine shared with other work.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shlex
import shutil
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import build_corpus

ROOT = Path(__file__).resolve().parent.parent
POSTDESK = Path(sys.executable).parent / "postdesk"
SERVICE = "servicedesk@example.org"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- the relay sink: a separate process, so it does not share the client's GIL -----------------


def _sink_main(port: int, acks: Any, ready: Any) -> None:
    """Receive every mail the service relays; report (monotonic time, recipients) per mail."""
    from aiosmtpd.controller import Controller

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            acks.put((time.monotonic(), list(envelope.rcpt_tos)))
            return "250 2.0.0 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port, decode_data=False)
    controller.start()
    ready.set()
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    controller.stop()


@dataclass
class Sink:
    port: int
    process: Any = None
    queue: Any = None
    seen: dict[str, float] = field(default_factory=dict)  # recipient -> first arrival
    total: int = 0

    def start(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.queue = context.Queue()
        ready = context.Event()
        self.process = context.Process(target=_sink_main, args=(self.port, self.queue, ready),
                                       daemon=True)
        self.process.start()
        if not ready.wait(30):
            raise SystemExit("relay sink did not start")

    def drain(self, timeout: float = 0.05) -> None:
        import queue

        while True:
            try:
                when, rcpts = self.queue.get(timeout=timeout)
            except queue.Empty:
                return
            self.total += 1
            for rcpt in rcpts:
                self.seen.setdefault(rcpt.lower(), when)
            timeout = 0

    def stop(self) -> None:
        if self.process is not None and self.process.is_alive():
            os.kill(self.process.pid, signal.SIGTERM)
            self.process.join(10)


# -- the service ---------------------------------------------------------------------------------


def make_site(folder: Path, smtp_port: int, sink_port: int, redaction: bool,
              overrides: list[str]) -> Path:
    config = yaml.safe_load((ROOT / "config.example.yaml").read_text())
    config["database"]["url"] = f"sqlite:///{folder / 'postdesk.db'}"
    config["data_dir"] = str(folder / "var")
    config["secrets"]["key_file"] = str(folder / "secret.key")
    config["rules_dir"] = str(ROOT / "rules")
    config["templates_dir"] = str(ROOT / "templates")
    config["smtp"]["port"] = smtp_port
    config["outgoing"] = {**config.get("outgoing", {}), "transport": "smtp",
                          "host": "127.0.0.1", "port": sink_port}
    config["redaction"]["enabled"] = redaction
    config["log_level"] = "WARNING"
    for override in overrides:
        key, _, value = override.partition("=")
        *parents, leaf = key.split(".")
        node = config
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = yaml.safe_load(value)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    return path


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("POSTDESK_SECRET_KEY",
                                                             "POSTDESK_CONFIG")}
    return env


def start_serve(config: Path, port: int, prefix: list[str], log: Path,
                sql_counts: Path | None) -> subprocess.Popen[bytes]:
    subprocess.run([str(POSTDESK), "--config", str(config), "init"], check=True,
                   capture_output=True, env=_env())
    env = _env()
    if sql_counts is not None:  # bench/sqlcount/sitecustomize.py in every server process
        sql_counts.mkdir()
        env["POSTDESK_BENCH_SQLCOUNT"] = str(sql_counts)
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(Path(__file__).parent / "sqlcount"), env.get("PYTHONPATH")]))
    argv = [*prefix, str(POSTDESK), "--config", str(config), "serve"]
    process = subprocess.Popen(argv, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"serve exited with {process.returncode}; see {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process
        except OSError:
            time.sleep(0.1)
    raise SystemExit("serve did not listen within 60 s")


def stop_serve(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to serve itself (under a profiler, that one then writes its output and ends)."""
    if process.poll() is None:
        serve = [p for p, label in descendants(process.pid).items() if label == "serve"]
        os.kill(serve[0] if serve else process.pid, signal.SIGTERM)
        try:
            process.wait(120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def descendants(pid: int) -> dict[int, str]:
    """pid -> short label of every process below `pid` (and pid itself)."""
    parents: dict[int, int] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found = {pid}
    changed = True
    while changed:
        changed = False
        for child, parent in parents.items():
            if parent in found and child not in found:
                found.add(child)
                changed = True
    return {p: _label(p) for p in sorted(found)}


def _label(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    text = b" ".join(argv).decode(errors="replace")
    if "py-spy" in text:
        return "py-spy"
    if "resource_tracker" in text:
        return "tracker"
    if "spawn_main" in text:
        return "child"
    if "serve" in text:
        return "serve"
    return Path(argv[0].decode(errors="replace")).name


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields) - idle) / CLK_TCK, sum(fields) / CLK_TCK


def cpu_seconds(pids: dict[int, str]) -> dict[int, float]:
    times = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        times[pid] = (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime
    return times


def name_children(pids: dict[int, str]) -> dict[int, str]:
    """The worker is serve's spawned child; the prepare process is the worker's."""
    parent_of = {}
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        parent_of[pid] = int(stat.rsplit(")", 1)[1].split()[1])
    serve = [p for p, label in pids.items() if label == "serve"]
    names = dict(pids)
    for pid, label in pids.items():
        if label == "child":
            names[pid] = "worker" if parent_of.get(pid) in serve else "prepare"
    return names


def start_profiler(pid: int, output: Path | None) -> subprocess.Popen[bytes] | None:
    """py-spy attached to serve and its children for the measured mails only (after warm-up)."""
    if output is None:
        return None
    serve = next((p for p, label in descendants(pid).items() if label == "serve"), pid)
    argv = [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(serve),
            "--subprocesses", "--nonblocking", "--rate", "200", "--format", "raw",
            "--output", str(output)]
    profiler = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # py-spy finds the child processes
    if profiler.poll() is not None:
        raise SystemExit(f"py-spy failed: {profiler.stderr.read().decode()[-300:]}"
                         if profiler.stderr else "py-spy failed")
    return profiler


def stop_profiler(profiler: subprocess.Popen[bytes] | None) -> None:
    if profiler is not None:
        profiler.send_signal(signal.SIGINT)
        profiler.wait(60)


def read_sql_counts(folder: Path | None) -> dict[int, dict[str, int]]:
    import json

    if folder is None:
        return {}
    counts = {}
    for path in folder.glob("*.json"):
        counts[int(path.stem)] = json.loads(path.read_text())["statements"]
    return counts


def print_sql_counts(before: dict[int, dict[str, int]], after: dict[int, dict[str, int]],
                     processes: dict[int, str], mails: int) -> None:
    for pid, counts in sorted(after.items()):
        delta = {k: v - before.get(pid, {}).get(k, 0) for k, v in counts.items()}
        delta = {k: v for k, v in delta.items() if v}
        if not delta:
            continue
        statements = sum(v for k, v in delta.items() if k != "COMMIT")
        print(f"SQL per mail, {processes.get(pid, pid)}: {statements / mails:.1f} statements, "
              f"{delta.get('COMMIT', 0) / mails:.2f} commits")
        for kind, count in sorted(delta.items(), key=lambda item: -item[1]):
            if kind != "COMMIT":
                print(f"    {count / mails:6.2f}  {kind}")


# -- the client ------------------------------------------------------------------------------


@dataclass
class Sent:
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _own_and_sink_cpu(sink: Sink) -> float:
    """CPU seconds of this client process and of the relay sink so far."""
    own = os.times()
    sink_pid = sink.process.pid if sink.process is not None else None
    return own.user + own.system + (cpu_seconds({sink_pid: "sink"}).get(sink_pid, 0.0)
                                    if sink_pid else 0.0)


def send_all(port: int, mails: list[tuple[str, bytes]], connections: int) -> tuple[Sent, float]:
    sent = Sent()
    batches = [mails[i::connections] for i in range(connections)]

    def client(batch: list[tuple[str, bytes]]) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=120) as smtp:
            smtp.ehlo("bench.example.net")
            for sender, raw in batch:
                try:
                    smtp.mail(sender)
                    code, _ = smtp.rcpt(SERVICE)
                    if code != 250:
                        raise smtplib.SMTPRecipientsRefused({SERVICE: (code, b"")})
                    started = time.perf_counter()
                    code, _ = smtp.data(raw)
                    elapsed = time.perf_counter() - started
                except (smtplib.SMTPException, OSError) as exc:
                    with sent.lock:
                        sent.failures.append(type(exc).__name__)
                    smtp.rset()
                    continue
                with sent.lock:
                    sent.latencies.append(elapsed)

    began = time.perf_counter()
    threads = [threading.Thread(target=client, args=(b,)) for b in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sent, time.perf_counter() - began


def wire(mails: list[EmailMessage]) -> list[tuple[str, bytes]]:
    return [(str(m["From"].addresses[0].addr_spec), m.as_bytes()) for m in mails]


def wait_acks(sink: Sink, senders: list[str], timeout: float) -> float | None:
    """Monotonic time of the last requester acknowledgement, or None on timeout."""
    wanted = {s.lower() for s in senders}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sink.drain()
        if wanted <= sink.seen.keys():
            return max(sink.seen[s] for s in wanted)
    return None


# -- the machine's speed at the time: the same fixed job before and after the measured mails ---


def reference_ms(mails: list[tuple[str, bytes]]) -> float:
    """Milliseconds for a fixed CPU job like the service's own (parse and re-serialise the
    warm-up mails with the email package, insert them into an in-memory SQLite table), median
    of three. This VM runs at two speeds about 1.8 times apart that switch within seconds (the
    same build took 9.8 to 15.1 ms of server CPU a mail in runs minutes apart; README,
    Benchmarks), so a run's rates mean something only next to this figure."""
    import email
    import email.policy
    import sqlite3

    def job() -> float:
        started = time.perf_counter()
        database = sqlite3.connect(":memory:")
        database.execute("CREATE TABLE m (id INTEGER PRIMARY KEY, sender TEXT, raw BLOB)")
        for _ in range(5):
            for sender, raw in mails:
                parsed = email.message_from_bytes(raw, policy=email.policy.default)
                database.execute("INSERT INTO m (sender, raw) VALUES (?, ?)",
                                 (sender, parsed.as_bytes()))
        database.commit()
        database.close()
        return (time.perf_counter() - started) * 1000

    return statistics.median(job() for _ in range(3))


# -- one run ----------------------------------------------------------------------------------


def run(options: argparse.Namespace, redaction: bool) -> None:
    folder = Path(tempfile.mkdtemp(prefix=f"e2e-{'red' if redaction else 'plain'}-",
                                   dir=options.tmp))
    sink = Sink(options.sink_port)
    sink.start()
    config = make_site(folder, options.port, options.sink_port, redaction, options.set)
    sql_counts = folder / "sql" if options.count_sql else None
    serve = start_serve(config, options.port, shlex.split(options.serve_prefix),
                        folder / "serve.log", sql_counts)
    try:
        warm = wire(build_corpus(options.warm_up, seed=options.seed + 1000, service=SERVICE,
                                 tag="w"))
        mails = wire(build_corpus(options.mails, seed=options.seed, service=SERVICE))
        sizes = sorted(len(raw) for _, raw in mails)
        if warm:
            send_all(options.port, warm, 1)
            if wait_acks(sink, [s for s, _ in warm], options.timeout) is None:
                raise SystemExit("warm-up mails were not acknowledged in time")
        reference_before = reference_ms(warm or mails[:20])
        processes = name_children(descendants(serve.pid))
        profiler = start_profiler(serve.pid, options.profile)
        cpu_before = cpu_seconds(processes)
        machine_before = machine_busy()
        bench_before = _own_and_sink_cpu(sink)
        sql_before = read_sql_counts(sql_counts)
        began = time.monotonic()
        sent, accepted_s = send_all(options.port, mails, options.connections)
        last_ack = wait_acks(sink, [s for s, _ in mails], options.timeout)
        cpu_after = cpu_seconds(processes)
        machine_after = machine_busy()
        bench_after = _own_and_sink_cpu(sink)
        stop_profiler(profiler)
        if options.profile is not None:
            import json

            options.profile.with_suffix(".pids.json").write_text(
                json.dumps({"processes": processes, "mails": len(mails)}))
        if sql_counts is not None:
            time.sleep(1.5)  # the counters are written once a second
        sql_after = read_sql_counts(sql_counts)
        done = (last_ack or time.monotonic()) - began
        acked = sum(1 for s, _ in mails if s.lower() in sink.seen)
    finally:
        stop_serve(serve)
        sink.stop()
        if options.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    reference_after = reference_ms(warm or mails[:20])  # the machine idle again
    lat = sorted(sent.latencies)
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else 0.0
    print(f"== redaction {'on' if redaction else 'off'}: {len(mails)} mails "
          f"(median {statistics.median(sizes) / 1024:.1f} KiB, max {sizes[-1] / 1024:.0f} KiB), "
          f"{options.connections} connections, warm-up {options.warm_up}"
          + "".join(f", {o}" for o in options.set))
    print(f"accepted              {len(lat) / accepted_s:8.1f} mails/s   "
          f"({len(sent.failures)} refused)")
    print(f"accept latency        p50 {statistics.median(lat) * 1000:.1f} ms, "
          f"p99 {p99 * 1000:.1f} ms (DATA to 250)")
    print(f"end-to-end (ack out)  {acked / done:8.1f} mails/s   ({acked}/{len(mails)} acks"
          f"{', TIMED OUT' if last_ack is None else ''}; {sink.total} mails relayed in all)")
    total = sum(cpu_after.get(p, 0) - cpu_before.get(p, 0) for p in processes)
    parts = ", ".join(
        f"{processes[p]} {(cpu_after[p] - cpu_before.get(p, 0)) / max(acked, 1) * 1000:.1f}"
        for p in processes if p in cpu_after and cpu_after[p] - cpu_before.get(p, 0) > 0.05)
    print(f"server CPU per mail   {total / max(acked, 1) * 1000:.1f} ms ({parts}) over "
          f"{done:.1f} s wall")
    busy = machine_after[0] - machine_before[0]
    print(f"bench CPU per mail    {(bench_after - bench_before) / max(acked, 1) * 1000:.1f} ms "
          f"(client and sink); machine busy {busy / (machine_after[1] - machine_before[1]):.0%}"
          f" of {os.cpu_count()} cores")
    print(f"machine speed         reference job {reference_before:.0f} ms before, "
          f"{reference_after:.0f} ms after (lower is faster; compare runs only at like figures)")
    if sql_counts is not None:
        print_sql_counts(sql_before, sql_after, processes, acked)
    if options.keep is not None:
        target = options.keep / folder.name
        shutil.move(str(folder), target)
        print(f"site kept in          {target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mails", type=int, default=600)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--warm-up", type=int, default=20, metavar="N",
                        help="first send N other mails and wait for their acknowledgements "
                        "(Presidio loaded, pipeline running)")
    parser.add_argument("--redaction", choices=["on", "off", "both"], default="both")
    parser.add_argument("--port", type=int, default=int(os.environ.get("E2E_PORT", "31425")))
    parser.add_argument("--sink-port", type=int,
                        default=int(os.environ.get("E2E_SINK_PORT", "31426")))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--tmp", type=Path, default=None, help="parent of the temp site folder")
    parser.add_argument("--keep", type=Path, default=None,
                        help="move the site (database, serve.log) into this folder afterwards")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. worker.cpu_priority=normal (repeatable)")
    parser.add_argument("--count-sql", action="store_true",
                        help="count SQL statements per mail and process (bench/sqlcount)")
    parser.add_argument("--profile", type=Path, default=None, metavar="FILE",
                        help="py-spy (pip install py-spy) samples serve, worker and prepare "
                        "during the measured mails into FILE (collapsed stacks); "
                        "bench/profile_top.py summarises it")
    parser.add_argument("--serve-prefix", default="",
                        help="command to run serve under, e.g. a profiler")
    options = parser.parse_args()
    if not POSTDESK.exists():
        raise SystemExit(f"{POSTDESK} not found: run `make venv` first")
    modes = {"on": [True], "off": [False], "both": [True, False]}[options.redaction]
    for redaction in modes:
        run(options, redaction)


if __name__ == "__main__":
    main()
