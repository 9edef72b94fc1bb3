#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A small server loop in front of a megaring runtime.

Client threads put requests (a vector of integers to sum) on a queue; one
server thread takes up to --batch of them at a time, copies each into its
row of a tensor registered with the runtime (no copy into megaring: the
slots read the tensor itself), publishes one REDUCE_ADD_U32 slot per row as
a single batch, waits for the kept results (the GIL is released meanwhile,
so clients keep queueing) and answers each client on its own reply queue.

The tensor is a PyTorch tensor when torch is importable (on the GPU when
the runtime runs the CUDA backend), else a numpy array.

    python3 samples/python_server.py --backend cpu --clients 4 --requests 200
"""
import argparse
import queue
import random
import sys
import threading

import megaring
from megaring import ops

WIDTH = 64  # int32 elements per request row


class Rows:
    """The registered tensor: `rows` rows of WIDTH int32 elements.

    Made before the runtime starts: on a GPU, torch loads its kernels when it
    first launches them, and a kernel first launched beside megaring's
    persistent kernel would wait for it (README, "Beside PyTorch"), so the
    tensor is allocated and a row filled once while nothing else runs."""

    def __init__(self, rows, cuda):
        try:
            import torch
        except ImportError:
            torch = None
        self.torch = torch
        if torch is not None:
            device = "cuda" if cuda else "cpu"
            self.tensor = torch.zeros((rows, WIDTH), dtype=torch.int32, device=device)
            self.kind = f"torch ({device})"
            self.fill(0, [0])
            self.publishable()
        else:
            import numpy
            self.tensor = numpy.zeros((rows, WIDTH), dtype=numpy.int32)
            self.kind = "numpy"
        self.buffer = None

    def register(self, rt):
        self.buffer = rt.register_buffer(self.tensor)

    def fill(self, row, values):
        if self.torch is not None:
            self.tensor[row, :len(values)] = self.torch.tensor(values, dtype=self.torch.int32)
        else:
            self.tensor[row, :len(values)] = values

    def publishable(self):
        """Host writes must have landed before the slots that read them. On a
        GPU, torch's stream is waited for, not the device: a device-wide
        torch.cuda.synchronize() would wait for the megakernel forever."""
        if self.torch is not None and self.tensor.is_cuda:
            self.torch.cuda.current_stream().synchronize()


def serve(rt, rows, requests, batch):
    rows.register(rt)
    served = 0
    while True:
        first = requests.get()
        if first is None:
            break
        pending = [first]
        while len(pending) < batch:
            try:
                item = requests.get_nowait()
            except queue.Empty:
                break
            if item is None:
                requests.put(None)  # stop after this batch
                break
            pending.append(item)
        for row, (values, _) in enumerate(pending):
            rows.fill(row, values)
        rows.publishable()
        slots = [ops.reduce_add_u32(rows.buffer, row * WIDTH * 4, len(values))
                 for row, (values, _) in enumerate(pending)]
        tickets = rt.publish_batch(slots, keep=True)
        for ticket, (_, reply) in zip(tickets, pending):
            reply.put(rt.wait(ticket, timeout=60))
        served += len(pending)
    rows.buffer.free()
    return served, rows.kind


def client(requests, count, seed, failures):
    rng = random.Random(seed)
    reply = queue.Queue()
    for _ in range(count):
        values = [rng.randrange(0, 1 << 20) for _ in range(rng.randrange(1, WIDTH + 1))]
        requests.put((values, reply))
        completion = reply.get()
        if not completion.ok or completion.result != sum(values):
            failures.append((values, completion))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=200, help="per client")
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args(argv)
    if args.clients < 1 or args.requests < 1 or args.batch < 1:
        parser.error("--clients, --requests and --batch must be positive")

    backend = args.backend
    if backend == "auto":
        backend = "cuda" if megaring.cuda_device_available() else "cpu"
    rows = Rows(args.batch, cuda=backend == "cuda")  # before the runtime: see Rows
    requests = queue.Queue()
    failures = []
    with megaring.Runtime(backend=backend, ring_capacity=256) as rt:
        result = {}
        server = threading.Thread(target=lambda: result.update(out=serve(rt, rows, requests, args.batch)))
        server.start()
        clients = [threading.Thread(target=client, args=(requests, args.requests, k, failures))
                   for k in range(args.clients)]
        for c in clients:
            c.start()
        for c in clients:
            c.join()
        requests.put(None)
        server.join()
        stats = rt.stats()
    served, kind = result["out"]
    expected = args.clients * args.requests
    print(f"python_server: {served} requests served on the {rt.backend} backend with {kind} "
          f"tensors, {len(failures)} wrong; {stats['completed_ok']} slots completed OK")
    return 0 if served == expected and not failures and stats["faulted"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
