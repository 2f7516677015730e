"""A REST path whose GraphQL document stops validating stops the server, at start-up.

Each compat route runs a fixed GraphQL document. Renaming or removing a graph field that
one uses must not switch the documented path off quietly (it used to become a 501 with
every test green): ``compat_rest.routing.check_routes`` refuses to build the layer and
names the route and the validation error.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from compat_rest import observing
from compat_rest.routing import RouteDocumentError
from dsa110.settings import Settings
from server.app import create_app


def test_a_route_whose_document_no_longer_validates_stops_app_creation(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    renamed = observing.REPROCESS.replace("reprocessGroup(", "reprocessObservationGroup(")
    assert renamed != observing.REPROCESS
    monkeypatch.setattr(observing, "REPROCESS", renamed)
    with pytest.raises(RouteDocumentError) as caught:
        create_app(Settings(data_dir=tmp_path), migrate=False)
    message = str(caught.value)
    assert "POST /reprocess/{group_id}" in message
    assert "Cannot query field 'reprocessObservationGroup' on type 'Mutation'" in message


def test_a_rest_error_bounds_what_it_quotes() -> None:
    """A REST refusal quoting a hostile value answers small, as the graph's do (dsa110.errors)."""
    from compat_rest.errors import ApiError

    error = ApiError(
        400, "BAD_REQUEST", f"no source {'x' * 100_000!r}", {"source_id": "y" * 100_000, "n": 10**400}
    )
    body = error.response().body
    assert len(body) < 1_000 and b'"code":"BAD_REQUEST"' in body
    assert error.details is not None and error.details["n"].startswith("~1e+")


def test_a_rest_error_keeps_a_long_path_it_quotes() -> None:
    """The bound is for hostile values: a 200-character path (a message quotes one whole) and a
    file name holding a run of digits come back as they were, in the message and the details."""
    from compat_rest.errors import ApiError

    path = "/stage/dsa110-contimg/ms/" + "d" * 148 + "/2025-10-24T14:00:00_cal.ms"
    incoming = "/data/incoming/2025102414000000123_sb01.hdf5"
    message = f"`ms`: {path!r} is not a CASA table (Measurement Set); the subbands: {incoming!r}"
    assert len(path) == 200 and len(message) > 200
    error = ApiError(400, "BAD_REQUEST", message, {"ms": path, "file": incoming})
    assert error.message == message
    assert error.details == {"ms": path, "file": incoming}
