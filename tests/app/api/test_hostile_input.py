"""Hostile and odd input against the real app (in process): every refusal is a 4xx with a JSON
body, and every answer is one the OpenAPI document describes."""

from __future__ import annotations

import json

import httpx
import pytest

from app.api.body import MAX_JSON_DEPTH
from app.crud.users import MAX_USER_ID
from app.schemas.rating import MAX_RATINGS_PER_REQUEST
from tests.app.api.conftest import admin_headers

pytestmark = pytest.mark.anyio

DEEP = b"[" * 50_000
JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/users", DEEP),
        ("/v1/users", b'{"age": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
        ("/v1/users/1/ratings", DEEP),
        (
            "/v1/admin/retrain",
            b'{"model": "ease", "params": {"x": ' + b"[" * 100 + b"]" * 100 + b"}}",
        ),
    ],
)
async def test_deeply_nested_json_is_a_422(
    client: httpx.AsyncClient, path: str, body: bytes
) -> None:
    answer = await client.post(path, content=body, headers={**JSON, **admin_headers()})
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert f"at most {MAX_JSON_DEPTH}" in json.dumps(detail)


async def test_a_bare_list_of_ratings_obeys_the_cap(client: httpx.AsyncClient) -> None:
    too_many = [{"item_id": 1 + i % 30, "rating": 4} for i in range(MAX_RATINGS_PER_REQUEST + 1)]
    for body in (too_many, {"ratings": too_many}):
        answer = await client.post("/v1/users/1/ratings", json=body)
        assert answer.status_code == 422, answer.text
        assert f"at most {MAX_RATINGS_PER_REQUEST}" in json.dumps(answer.json()["detail"])
    assert len((await client.get("/v1/users/1/ratings")).json()) == 8  # nothing was written
    ok = await client.post("/v1/users/1/ratings", json=[{"item_id": 3, "rating": 5}])
    assert ok.status_code == 200 and ok.json()["written"] == 1


async def test_ratings_body_errors_keep_fastapis_shape(client: httpx.AsyncClient) -> None:
    answer = await client.post("/v1/users/1/ratings", json=[{"item_id": 3, "rating": 9}])
    assert answer.status_code == 422
    errors = answer.json()["detail"]  # one per form the body could have had
    assert all(error["loc"][0] == "body" for error in errors)
    assert "less_than_equal" in {error["type"] for error in errors}
    not_text = await client.post("/v1/users/1/ratings", content=b"\xff\xfe\xfa", headers=JSON)
    assert not_text.status_code in (400, 422) and "detail" in not_text.json()
    form = await client.post(
        "/v1/users/1/ratings", content=b"a=1", headers={"content-type": "text/plain"}
    )
    assert form.status_code == 415


async def test_auto_assigned_user_ids_stay_in_range(client: httpx.AsyncClient) -> None:
    top = await client.post("/v1/users", json={"id": MAX_USER_ID})
    assert top.status_code == 201
    following = await client.post("/v1/users", json={})
    assert following.status_code == 201
    new_id = following.json()["id"]
    assert 1 <= new_id <= MAX_USER_ID
    assert new_id == 41  # the planted users are 1..40: the lowest free id
    assert (await client.get(f"/v1/users/{new_id}")).status_code == 200
    again = await client.post("/v1/users", json={})
    assert again.json()["id"] == 42


async def test_options_lists_every_method_of_the_path(client: httpx.AsyncClient) -> None:
    answer = await client.request("OPTIONS", "/v1/users/1/ratings")
    assert answer.status_code == 405
    assert answer.headers["allow"].split(", ") == ["GET", "HEAD", "POST"]
    assert (await client.request("DELETE", "/v1/users/1")).headers["allow"] == "GET, HEAD"


@pytest.mark.parametrize("model", ["gan", "dbn", "autoencoder-images", "rbm-images"])
async def test_image_models_are_refused_alike_for_recommendations(
    client: httpx.AsyncClient, model: str
) -> None:
    answer = await client.get("/v1/users/1/recommendations", params={"model": model})
    assert answer.status_code == 422
    assert "does not serve recommendations" in answer.json()["detail"]


async def test_bad_retrain_params_are_refused_before_a_job_exists(
    client: httpx.AsyncClient,
) -> None:
    for params, named in (
        ({"n_hiden": 20}, "n_hiden"),
        ({"l2": 300, "typo": 1}, "typo"),
        ({"k": "ten"}, "'k' must be a number"),
    ):
        model = "rbm" if "n_hiden" in params else "ease"
        answer = await client.post(
            "/v1/admin/retrain", json={"model": model, "params": params}, headers=admin_headers()
        )
        assert answer.status_code == 422, answer.text
        assert named in answer.json()["detail"]
    jobs = await client.get("/v1/admin/jobs", headers=admin_headers())
    assert jobs.json() == []


async def test_openapi_documents_the_errors_it_answers(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    for path, expected in (
        ("/v1/users", {"400", "413", "422"}),
        ("/v1/admin/retrain", {"400", "413", "422"}),
        ("/v1/users/{user_id}/ratings", {"400", "413", "415", "422"}),
        ("/v1/images/reconstruct", {"400", "413", "415", "422"}),
        ("/v1/gan/discriminate", {"400", "413", "415", "422"}),
    ):
        responses = paths[path]["post"]["responses"]
        assert expected <= set(responses), (path, sorted(responses))
    error = paths["/v1/admin/retrain"]["post"]["responses"]["422"]["content"]["application/json"]
    assert error["schema"]["$ref"].endswith("/ErrorPublic")  # a string or a list of errors
    body = paths["/v1/users/{user_id}/ratings"]["post"]["requestBody"]["content"]
    bare_list = body["application/json"]["schema"]["anyOf"][2]
    assert bare_list["maxItems"] == MAX_RATINGS_PER_REQUEST
