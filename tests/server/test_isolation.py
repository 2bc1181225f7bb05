"""No response ever carries a memory outside the caller's key: random operations by keys
with overlapping and disjoint scopes, through the real server."""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lightmem_core import AuthError, ConflictError, InvalidInputError, LightMemory, MemoryConfig, NotFoundError
from lightmem_core.server.keys import KeyStore
from tests._served import Served

USERS = ("maya", "tom", "team:apollo", "zoe")
GRANTS = {  # name -> (users, read_users, read_only)
    "maya": (["maya", "team:apollo"], [], False),
    "tom": (["tom"], ["team:apollo"], False),
    "zoe": (["zoe"], [], False),
    "auditor": ([], ["maya", "tom"], True),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: Any, embedder: Any) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("iso")
    memory = LightMemory(MemoryConfig.from_dict({"store": {"path": str(root)}}), embedder=embedder)
    keys = KeyStore(str(root / "keys.sqlite"))
    with Served(memory, keys) as served:
        clients = {}
        for name, (users, read_users, ro) in GRANTS.items():
            _, secret = keys.create(name=name, users=users, read_users=read_users, read_only=ro)
            clients[name] = served.client(secret)
        for u in USERS:  # something to find in every scope
            memory.add_memory(f"The secret word of {u} is {u[::-1]}-kettle.", user_id=u)
        yield {"memory": memory, "clients": clients, "ids": {e.id: u for u in USERS for e in memory.get_all(user_id=u)}}
    memory.close()
    keys.close()


def _readable(name: str) -> set[str]:
    users, read_users, _ = GRANTS[name]
    return {*users, *read_users}


OP = st.tuples(
    st.sampled_from(sorted(GRANTS)),
    st.sampled_from(["add", "retrieve", "scopes", "list", "page", "get", "history", "update", "delete"]),
    st.sampled_from(USERS),
    st.integers(0, 10_000),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(OP, min_size=1, max_size=6))
def test_no_response_leaves_the_keys_scopes(world: dict[str, Any], ops: list[Any]) -> None:
    for name, kind, user, n in ops:
        client, readable = world["clients"][name], _readable(name)
        ids = sorted(world["ids"])
        target = ids[n % len(ids)] if ids else "00000000-0000-0000-0000-000000000000"
        try:
            if kind == "add":
                got = client.add_memory(f"Note {n} for {user}: the kettle is blue.", user_id=user)
                seen = [e.user_id for e in got.added]
                world["ids"].update({e.id: e.user_id for e in got.added})
            elif kind == "retrieve":
                seen = [h.entry.user_id for h in client.retrieve("secret word kettle", user_id=user)]
            elif kind == "scopes":
                seen = [h.entry.user_id for h in client.retrieve("secret word", scopes=[user, "team:apollo"])]
            elif kind == "list":
                seen = [e.user_id for e in client.get_all(user_id=user)]
            elif kind == "page":
                seen = [e.user_id for e in client.get_page(user_id=user).entries]
            elif kind == "get":
                seen = [client.get(target, user_id=user).user_id]
            elif kind == "history":
                seen = [r.user_id for r in client.history(target, user_id=user)]
            elif kind == "update":
                seen = [client.update(target, f"Edited {n}.", user_id=user).user_id]
            else:
                client.delete(target, user_id=user)
                world["ids"].pop(target, None)
                seen = [user]
        except AuthError as exc:
            assert exc.status == 403
            continue
        except (NotFoundError, ConflictError, InvalidInputError):
            continue
        assert set(seen) <= readable, (name, kind, user, seen)
        if kind in ("add", "update", "delete"):
            users, _, ro = GRANTS[name]
            assert not ro and user in users, (name, kind, user)
