"""The error hierarchy (kit.errors): status, stable code, the field at fault."""

import pytest

from kit import errors

EXPECTED = [
    (errors.PenguinMailsError, 500, "internal_error"),
    (errors.BadRequest, 400, "bad_request"),
    (errors.Unauthorized, 401, "unauthorized"),
    (errors.Forbidden, 403, "forbidden"),
    (errors.NotFound, 404, "not_found"),
    (errors.Conflict, 409, "conflict"),
    (errors.PayloadTooLarge, 413, "payload_too_large"),
    (errors.ValidationFailed, 422, "validation_error"),
    (errors.Unavailable, 503, "unavailable"),
    (errors.DatabaseUnavailable, 503, "database_unavailable"),
    (errors.TransactionConflict, 503, "transaction_conflict"),
    (errors.ConfigurationError, 500, "configuration_error"),
]


@pytest.mark.parametrize(("cls", "status", "code"), EXPECTED)
def test_status_code_and_code(cls: type[errors.PenguinMailsError], status: int, code: str) -> None:
    exc = cls("something went wrong")
    assert exc.status_code == status
    assert exc.code == code
    assert isinstance(exc, errors.PenguinMailsError)
    assert exc.message == str(exc) == "something went wrong"
    assert exc.field is None
    assert exc.details == {}


def test_every_error_class_is_listed() -> None:
    defined = {
        obj
        for obj in vars(errors).values()
        if isinstance(obj, type) and issubclass(obj, errors.PenguinMailsError)
    }
    assert defined == {cls for cls, _, _ in EXPECTED}


def test_codes_are_unique() -> None:
    codes = [code for _, _, code in EXPECTED]
    assert len(set(codes)) == len(codes)


def test_field_and_details_are_carried() -> None:
    exc = errors.ValidationFailed("not a domain", field="domain", value="exa mple", limit=3)
    assert exc.field == "domain"
    assert exc.details == {"value": "exa mple", "limit": 3}
    with pytest.raises(errors.ValidationFailed) as caught:
        raise exc
    assert caught.value.field == "domain"


def test_outages_and_conflicts_are_unavailable() -> None:
    assert issubclass(errors.DatabaseUnavailable, errors.Unavailable)
    assert issubclass(errors.TransactionConflict, errors.Unavailable)
