"""stack preview|outputs WORKSPACE: what an `up` of a workspace's stack would change, through the
workspace's own engine (sandbox or live). WORKSPACE is the workspace id or its stack name."""

import argparse
import json
import sys
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cli.processes import prepare
from database.models.workspaces import Workspace
from database.session import session_scope
from kit.errors import NotFound


def find_workspace(session: Session, ref: str) -> Workspace:
    try:
        where = Workspace.id == uuid.UUID(ref)
    except ValueError:
        where = Workspace.stack_name == ref
    workspace = session.scalars(select(Workspace).where(where)).first()
    if workspace is None:
        raise NotFound(f"no workspace with id or stack name {ref!r}", field="workspace")
    return workspace


def _preview(args: argparse.Namespace) -> int:
    from automation.desired_state import build_fleet_config
    from automation.engines import engine_for

    prepare()
    # A short transaction for the desired state; none is held while the engine runs.
    with session_scope() as session:
        workspace = find_workspace(session, args.workspace)
        config = build_fleet_config(session, workspace)
        engine = engine_for(workspace)
        stack_name = workspace.stack_name
    progress = None if args.json else (lambda line: print(line, file=sys.stderr))
    result = engine.preview(stack_name, config, on_event=progress)
    if args.json:
        print(
            json.dumps(
                {
                    "stack": stack_name,
                    "engine": engine.name,
                    "changes": [c.as_dict() for c in result.changes],
                    "summary": result.summary,
                }
            )
        )
        return 0
    print(f"stack {stack_name} ({engine.name} engine)")
    for change in result.changes:
        print(f"  {change}")
    counts = ", ".join(f"{n} to {op}" for op, n in result.summary.items() if n and op != "same")
    print(f"{counts or 'no changes'}; {result.summary.get('same', 0)} unchanged")
    return 0


def _outputs(args: argparse.Namespace) -> int:
    from automation.engines import engine_for

    prepare()
    with session_scope() as session:
        workspace = find_workspace(session, args.workspace)
        engine = engine_for(workspace)
        stack_name = workspace.stack_name
    print(json.dumps(engine.outputs(stack_name), indent=2, sort_keys=True))
    return 0


def register(sub: Any) -> None:
    stack = sub.add_parser("stack", help="inspect a workspace's Pulumi stack")
    ssub = stack.add_subparsers(dest="stack_command", metavar="ACTION", required=True)
    p = ssub.add_parser("preview", help="print what an `up` would change (nothing is changed)")
    p.add_argument("workspace", help="workspace id or stack name (ws-...)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(handler=_preview)
    p = ssub.add_parser("outputs", help="print the stack's last outputs as JSON")
    p.add_argument("workspace", help="workspace id or stack name (ws-...)")
    p.set_defaults(handler=_outputs)
