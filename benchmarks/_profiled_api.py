"""`penguinmails api` under cProfile in every thread (the event loop's and anyio's workers),
merged into one stats file at exit: what `python -m benchmarks api --profile FILE` runs.

    python -m benchmarks._profiled_api FILE PORT
"""

import contextlib
import cProfile
import pstats
import sys
import threading

_profiles: list[cProfile.Profile] = []
_lock = threading.Lock()
_original_run = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]


def _profiled_run(self: threading.Thread) -> None:
    profile = cProfile.Profile()
    with _lock:
        _profiles.append(profile)
    profile.enable()
    try:
        _original_run(self)
    finally:
        profile.disable()


def main() -> None:
    out, port = sys.argv[1], sys.argv[2]
    # _bootstrap_inner, not run: anyio's worker threads override run.
    threading.Thread._bootstrap_inner = _profiled_run  # type: ignore[attr-defined]
    from cli.main import main as cli_main

    main_profile = cProfile.Profile()
    main_profile.enable()
    try:
        cli_main(["api", "--port", port])
    except SystemExit:
        pass
    finally:
        main_profile.disable()
        for profile in _profiles:
            profile.disable()
        stats = pstats.Stats(main_profile)
        for profile in _profiles:
            with contextlib.suppress(TypeError):  # a thread that never ran anything
                stats.add(profile)
        stats.dump_stats(out)


if __name__ == "__main__":
    main()
