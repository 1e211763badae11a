"""The event loops the sweeps run on."""

import asyncio

import uvloop

from kit.aio import run_async, run_sweep


def test_a_sweep_runs_on_uvloop() -> None:
    async def loop_kind() -> type:
        return type(asyncio.get_running_loop())

    assert issubclass(run_sweep(loop_kind()), uvloop.Loop)


def test_a_sweep_loop_serves_tls_streams_and_timeouts() -> None:
    """What the probes ask of it: streams and a deadline that fires."""

    async def go() -> tuple[bytes, bool]:
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(await reader.readline())
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"ping\n")
        line = await reader.readline()
        writer.close()
        timed_out = False
        try:
            async with asyncio.timeout(0.05):
                await asyncio.Event().wait()
        except TimeoutError:
            timed_out = True
        server.close()
        await server.wait_closed()
        return line, timed_out

    assert run_sweep(go()) == (b"ping\n", True)


def test_run_async_from_inside_a_running_loop_uses_a_thread_of_its_own() -> None:
    async def inner() -> int:
        return 7

    async def outer() -> int:
        return run_async(inner())

    assert asyncio.run(outer()) == 7
