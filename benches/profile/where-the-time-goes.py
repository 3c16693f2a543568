#!/usr/bin/env python3
"""Sorts the server's CPU samples from `perf` into the parts of a request.

Used for docs/performance.md, "Where the time goes". Record the server while
`cargo bench --bench load` drives one operation, then read the samples:

    LOAD_SECONDS=10 LOAD_CONCURRENCY=64 LOAD_OPS=update cargo bench --bench load &
    sleep 7   # past the seeding
    perf record -e cpu-clock -F 1000 -g --call-graph dwarf,16384 \
        -p "$(pgrep -f 'pod-identity-store --listen')" -o perf.data -- sleep 4
    perf script -i perf.data -F comm,tid,ip,sym > samples.txt
    python3 benches/profile/where-the-time-goes.py samples.txt

Each sample is put in the first bucket whose rule matches its thread and
call stack, so every sample is counted once.
"""

import collections
import re
import sys


def samples(path):
    """Yields (thread name without its number, [frames, innermost first])."""
    thread, frames = None, []
    for line in open(path, encoding="utf-8", errors="replace"):
        if not line.strip():
            if thread is not None:
                yield thread, frames
            thread, frames = None, []
        elif not line[0].isspace():
            thread = re.sub(r"-?\d+$", "", line.split()[0])
        else:
            parts = line.strip().split(" ", 1)
            frames.append(re.sub(r"\+0x[0-9a-f]+$", "", parts[1] if len(parts) > 1 else "?"))
    if thread is not None:
        yield thread, frames


def has(frames, *names):
    return any(name in frame for frame in frames for name in names)


def bucket(thread, frames):
    if "actix" in thread:  # the HTTP workers
        if has(frames, "pod_identity_store::api::handle"):
            if has(frames, "spawn_blocking", "Writer::run", "oneshot", "watch::"):
                return "HTTP worker: handing work to a store thread, being woken"
            return "HTTP worker: our handler (routing, JSON in and out, validation, log line)"
        if has(frames, "__sys_sendto", "__sys_recvfrom", "tcp_sendmsg", "sock_recvmsg"):
            return "HTTP worker: socket reads and writes (kernel TCP)"
        return "HTTP worker: actix-http parsing and encoding, event loop"
    if thread in ("tokio-rt-worker", "store-writer"):
        who = "reader (blocking pool)" if thread == "tokio-rt-worker" else "writer thread"
        if has(frames, "crossbeam_epoch"):
            return "sled: epoch garbage collection"
        if has(frames, "TransactionalTrees::commit", "TransactionalTree::commit", "seal_batch", "pin_log"):
            return f"{who}: sled applying the transaction (inserts, log reservations)"
        if has(frames, "sled::tree::Tree::get", "TransactionalTree::get", "sled::tree::Iter", "view_for_key"):
            return f"{who}: sled lookups"
        if has(frames, "sled::transaction", "concurrency_control"):
            return f"{who}: sled transaction set-up and locks"
        if has(frames, "pod_identity_store"):
            return f"{who}: our store code (bincode records, checks, keys)"
        return f"{who}: thread hand-off, wake-ups"
    if thread == "sled-io":
        if has(frames, "crossbeam_epoch"):
            return "sled: epoch garbage collection"
        if has(frames, "sync_file_range", "pwrite"):
            return "sled I/O threads: log writes (pwrite, sync_file_range)"
        return "sled I/O threads: thread pool (wake-ups of every idle thread per job, waits)"
    if thread == "group-commit":
        return "group commit thread: flush, fsync"
    if thread == "log":  # sled's "log flusher" (store.segment_cleaning_interval_ms)
        if has(frames, "fsync", "sync_all"):
            return "sled's flush thread: fsync"
        return "sled's flush thread: writing out the log buffer, moving live pages out of segments"
    return "other: " + thread


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    counts = collections.Counter(bucket(t, f) for t, f in samples(sys.argv[1]))
    total = sum(counts.values())
    print(f"{total} samples")
    for name, n in counts.most_common():
        print(f"{100 * n / total:5.1f}%  {name}")


if __name__ == "__main__":
    main()
