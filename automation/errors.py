"""Errors of a stack run, for the queue to decide: retry later (`transient`) or fail for good.

PenguinMailsError
└── EngineError (500; transient=False)
    ├── PulumiNotInstalled (503; permanent: says how to install the CLI)
    ├── StackLocked (409; transient: another update holds the stack)
    ├── StackConfigError (422; permanent: names the config key at fault)
    ├── ProviderError (502; transient unless the provider's answer is clearly permanent)
    └── SharedStateRequired (409; permanent: a machine-local Pulumi backend on a multi-host
        deployment; says which backend to set)
"""

from typing import Any

from kit.errors import PenguinMailsError


class EngineError(PenguinMailsError):
    code = "engine_error"
    transient: bool = False

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        transient: bool | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message, field=field, **details)
        if transient is not None:
            self.transient = transient


class PulumiNotInstalled(EngineError):
    status_code = 503
    code = "pulumi_not_installed"
    transient = False

    def __init__(self, command: str = "pulumi") -> None:
        super().__init__(
            f"the Pulumi CLI ({command!r}) was not found: install it with "
            "`curl -fsSL https://get.pulumi.com | sh` (or see "
            "https://www.pulumi.com/docs/install/), put it on PATH or set "
            "PENGUINMAILS_PULUMI_COMMAND to its path, or create the workspace as a sandbox",
        )


class StackLocked(EngineError):
    status_code = 409
    code = "stack_locked"
    transient = True


class StackConfigError(EngineError):
    status_code = 422
    code = "stack_config_error"
    transient = False


class ProviderError(EngineError):
    status_code = 502
    code = "provider_error"
    transient = True


class SharedStateRequired(EngineError):
    """A live stack refused before it ran: this host's Pulumi state is machine-local and other
    hosts' workers share the database (`domain.hosts.backends.check`)."""

    status_code = 409
    code = "machine_local_pulumi_state"
    transient = False
