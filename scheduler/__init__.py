"""The scheduler process half: APScheduler runs the periodic sweeps; operation workers run
stack operations. Jobs are set-based, idempotent functions that tests call directly."""
