"""A URL whose host name does not resolve is answered as such, not as a forbidden host, through
the URL rule and through the REST API (the lookup is replaced: tests never ask a real DNS)."""

from __future__ import annotations

import socket

import pytest
from mockmodels.single import inference as single

from modelhubapi.safety import urls
from modelhubapi.safety.errors import InputError

UNRESOLVED = "The URL's host name could not be resolved."
NOT_ALLOWED = "URL not allowed: its host is unknown or not public."


@pytest.fixture
def resolver(monkeypatch) -> dict[str, BaseException | list[str]]:
    """Host name -> the addresses the lookup returns, or the error it raises."""
    answers: dict[str, BaseException | list[str]] = {}

    def resolve(host: str, port: int) -> list[str]:
        answer = answers[host]
        if isinstance(answer, BaseException):
            raise answer
        return answer

    monkeypatch.setattr(urls, "resolve_host", resolve)
    return answers


@pytest.mark.parametrize(
    "failure",
    [
        socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
        socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"),  # offline
    ],
)
def test_a_name_that_does_not_resolve_is_called_so(resolver, tmp_path, failure):
    resolver["photos.exmaple.org"] = failure
    with pytest.raises(InputError) as refused:
        urls.download("https://photos.exmaple.org/cat.jpg", str(tmp_path / "cat.jpg"))
    assert (refused.value.status, refused.value.message) == (400, UNRESOLVED)
    assert list(tmp_path.iterdir()) == []


def test_a_name_that_resolves_to_a_private_address_is_still_not_allowed(resolver, tmp_path):
    resolver["intranet.example.org"] = ["10.1.2.3"]
    with pytest.raises(InputError) as refused:
        urls.download("http://intranet.example.org/", str(tmp_path / "page"))
    assert refused.value.message == NOT_ALLOWED


def test_the_rest_api_answers_an_unresolved_host_in_json(resolver, rest_client):
    resolver["photos.exmaple.org"] = socket.gaierror(socket.EAI_NONAME, "unknown")
    client = rest_client(single.Model()).client
    answer = client.get("/api/predict", query_string={"fileurl": "http://photos.exmaple.org/a.png"})
    assert answer.status_code == 400
    assert answer.get_json() == {"error": UNRESOLVED}
