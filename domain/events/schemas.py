import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from pydantic_core import PydanticCustomError

from domain.events import catalogue


def _known_filter(pattern: str) -> str:
    problem = catalogue.pattern_problem(pattern, allow_all=False)
    if problem is not None:
        raise PydanticCustomError("unknown_event_type", problem)
    return pattern


# An exact type or a family (`health.*`) of the catalogue.
EventFilter = Annotated[str, StringConstraints(max_length=64), AfterValidator(_known_filter)]


class EventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    type: str
    workspace_id: uuid.UUID | None = Field(
        description="Kept after the workspace is deleted (no longer a link to it then)."
    )
    workspace_name: str | None = Field(
        description="The workspace's name when the event was recorded; kept after it is deleted."
    )
    subject_type: str | None
    subject_id: uuid.UUID | None
    message: str
    data: dict[str, Any]
    created_at: datetime


class EventTypeRead(BaseModel):
    name: str
    family: str
    description: str
    subject_type: str | None
    fan_out: bool = Field(
        description="False: sent only to the one endpoint it was made for (a test ping), "
        "never to subscribers."
    )
    example: dict[str, Any] = Field(description="The JSON body a webhook receiver gets.")

    @classmethod
    def of(cls, t: catalogue.EventType) -> "EventTypeRead":
        return cls(
            name=t.name,
            family=t.family,
            description=t.description,
            subject_type=t.subject,
            fan_out=t.fan_out,
            example=catalogue.example_body(t),
        )


class EventTypeList(BaseModel):
    items: list[EventTypeRead]
    families: list[str] = Field(description="What `family.*` subscriptions and filters may name.")
