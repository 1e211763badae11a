"""Our operation workers alone (scheduler.workers.OperationWorkers, `PENGUINMAILS_WORKER_THREADS`
threads), without the periodic sweeps `penguinmails worker` also starts (their DNS and health
passes over the benchmark's fleet would share the cores with the drain): what the queue
benchmark compares with the minimal worker. Runs until SIGTERM.

    python -m benchmarks._queue_worker   (PENGUINMAILS_DATABASE_URL, ...)
"""

import signal
import threading

from scheduler.workers import OperationWorkers
from settings import get_settings


def main() -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    workers = OperationWorkers(get_settings())
    workers.start()
    stop.wait()
    workers.stop()


if __name__ == "__main__":
    main()
