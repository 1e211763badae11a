"""What the server's provider says about it: the second half of `reachable`. A server that does
not answer SSH while Hetzner reports it `off` is a different incident from one that is running
and silent."""

import httpx


async def hetzner_status(
    api_url: str, token: str, server_id: str, timeout: float
) -> tuple[str | None, str | None]:
    """(status such as `running`/`off`, None) or (None, why it could not be read)."""
    if not server_id.isdigit():
        return None, f"provider id {server_id!r} is not a Hetzner server id"
    try:
        async with httpx.AsyncClient(timeout=timeout, trust_env=False) as client:
            r = await client.get(
                f"{api_url.rstrip('/')}/servers/{server_id}",
                headers={"Authorization": f"Bearer {token}"},
            )
    except httpx.HTTPError as exc:
        return None, f"Hetzner API: {type(exc).__name__}"
    if r.status_code != 200:
        return None, f"Hetzner API answered HTTP {r.status_code}"
    try:
        status = r.json()["server"]["status"]
    except (ValueError, KeyError, TypeError):
        return None, "Hetzner API answered without a server status"
    return str(status), None
