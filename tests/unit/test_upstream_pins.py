"""Our eight patches on private internals of other libraries (docs/upstream-patches.md) hold
only for the upstream code they were written against. Each test pins that code: every
upstream symbol a patch overrides, reimplements or relies on, by its signature and the
SHA-256 of its source, at the pinned version. An upgrade that changes one fails here,
loudly, instead of the patch going subtly wrong.

When one fails: read the upstream change, re-verify the patch named in the test against it
(docs/upstream-patches.md says what each relies on, and which tests exercise it), change the
patch if needed, then record the new version, signature and hash below.

Only upstream modules are imported, so the tests hold wherever our patches live.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import inspect
from dataclasses import dataclass
from typing import Any

import pytest


@dataclass(frozen=True)
class Pin:
    symbol: str  # "module:Class.attribute"
    signature: str
    sha256: str  # of inspect.getsource()


@dataclass(frozen=True)
class Patch:
    ours: str  # where the patch is (docs/upstream-patches.md)
    distribution: str
    version: str
    pins: tuple[Pin, ...]


PATCHES: dict[str, Patch] = {
    "uvicorn _start_asgi_task": Patch(
        ours="infra/server/http.py: HttpToolsProtocol._start_asgi_task, HeadWithBody",
        distribution="uvicorn",
        version="0.54.0",
        pins=(
            Pin(
                "uvicorn.protocols.http.httptools_impl:HttpToolsProtocol._start_asgi_task",
                "(self, cycle: 'RequestResponseCycle', app: 'ASGI3Application') -> 'None'",
                "9c08c2571ae9b0380320a24c20c3af18d165f168c21bc3aaf14754a5b0fc2b8a",
            ),
            Pin(
                "uvicorn.protocols.http.httptools_impl:RequestResponseCycle.send",
                "(self, message: 'ASGISendEvent') -> 'None'",
                "abdd8601b326a8da972436918d3a954e1ef39c6bf0cd9e1c1954c2e798d0bb9c",
            ),
            Pin(
                "uvicorn.protocols.http.httptools_impl:RequestResponseCycle.receive",
                "(self) -> 'ASGIReceiveEvent'",
                "8124ae006be71184810da91d586b97c4b3b9ae43e28984bc94f81e26d20af3e6",
            ),
        ),
    ),
    "Django ASGIHandler.handle": Patch(
        ours="infra/server/handler.py: SyncChainASGIHandler (__call__, handle, load_middleware)",
        distribution="Django",
        version="5.2.19",
        pins=(
            Pin(
                "django.core.handlers.asgi:ASGIHandler.__call__",
                "(self, scope, receive, send)",
                "f756809e9c9308dcccb78a301fccf09196e80cdc4745690f80384d09b69dd102",
            ),
            Pin(
                "django.core.handlers.asgi:ASGIHandler.handle",
                "(self, scope, receive, send)",
                "98faeb5bef800331e6a8002fbc96b30e4122a23438ae45a047190a531ea11323",
            ),
            Pin(
                "django.core.handlers.asgi:ASGIHandler.read_body",
                "(self, receive)",
                "cf4aa904631d5410206f1a6b12ef0c74e99e4bd7313232c8e61f7a09a66a95e1",
            ),
            Pin(
                "django.core.handlers.asgi:ASGIHandler.create_request",
                "(self, scope, body_file)",
                "5eae59c6696013ffad47c3c05da5820dc7e17b2a3c8a09f59e12fd9bede5dc4f",
            ),
            Pin(
                "django.core.handlers.asgi:ASGIHandler.send_response",
                "(self, response, send)",
                "77eda2b08689b44ee277c936092bde02e50f84727f7398480a127e7e9e1dad06",
            ),
            Pin(
                "django.core.handlers.base:BaseHandler.load_middleware",
                "(self, is_async=False)",
                "a1fb7ee5f8586195da2174d1bbc2bbfc7ca19b9d26ea66412cb434f45bf6d467",
            ),
        ),
    ),
    "Django _connection_pools": Patch(
        ours="infra/postgres/backend/base.py: DatabaseWrapper.get_connection_params",
        distribution="Django",
        version="5.2.19",
        pins=(
            Pin(
                "django.db.backends.postgresql.base:DatabaseWrapper.pool",
                "(self)",
                "e5c2654fdf2d50900fec9db41948d0b026da988e24d0eba1b4b9a9d4aacb1b17",
            ),
            Pin(
                "django.db.backends.postgresql.base:DatabaseWrapper.get_new_connection",
                "(self, conn_params)",
                "acc4e253c2e311a4b5faa39afcc9b1d9920124606df2fc1094c5ea11ca6230dd",
            ),
            Pin(
                "django.db.backends.base.base:BaseDatabaseWrapper.connect",
                "(self)",
                "65ad70c3f9c2250fbdb67cb6f7de934dd9b343f99755632f36a6c32b8ecb26bc",
            ),
        ),
    ),
    "eventsourcing _record and _take_snapshots": Patch(
        ours="command_api/application.py: DeskstreamApplication.save",
        distribution="eventsourcing",
        version="9.5.6",
        pins=(
            Pin(
                "eventsourcing.application:Application.save",
                "(self, *objs: 'MutableOrImmutableAggregate[TAggregateID] | "
                "DomainEventProtocol[TAggregateID] | None', **kwargs: 'Any') "
                "-> 'list[Recording[TAggregateID]]'",
                "4e9747d14b8fd046df1b9b8ce688be89030978de0c04a632e6a7ec783dc7c5cc",
            ),
            Pin(
                "eventsourcing.application:Application._record",
                "(self, processing_event: 'ProcessingEvent[TAggregateID]') "
                "-> 'list[Recording[TAggregateID]]'",
                "104c6186b29d50595198443b697de23b0dab4344c50d4dca54688b32fce52340",
            ),
            Pin(
                "eventsourcing.application:Application._take_snapshots",
                "(self, processing_event: 'ProcessingEvent[TAggregateID]') -> 'None'",
                "ae98c5b97ed9a8e3c50f324a01081e277572d192fac93ef738fdb3c053421562",
            ),
            Pin(
                "eventsourcing.application:ProcessingEvent.__init__",
                "(self, tracking: 'Tracking | None' = None)",
                "a0682ee01c41601c40a81c13cc45b87d4c843e3a93f5f93a1d0ab824ac5d2d83",
            ),
            Pin(
                "eventsourcing.application:ProcessingEvent.collect_events",
                "(self, *objs: 'MutableOrImmutableAggregate[TAggregateID] | "
                "DomainEventProtocol[TAggregateID] | None', **kwargs: 'Any') -> 'None'",
                "7e3a7e6b1abd2bef334f1ebe7015d887cf935916f87f3c7fbd75127907ab3488",
            ),
        ),
    ),
    "eventsourcing _notify_channel": Patch(
        ours="infra/postgres/recorder.py: DeskstreamRecorder (__init__, _notify_channel)",
        distribution="eventsourcing",
        version="9.5.6",
        pins=(
            Pin(
                "eventsourcing.postgres:PostgresApplicationRecorder._notify_channel",
                "(self, curs: 'Cursor[DictRow]') -> 'None'",
                "9e5bab72ecfbcf2ec8060b6d5f87cc5c0cf02a59bd7671e3efdb3a4c540371fe",
            ),
            Pin(
                "eventsourcing.postgres:PostgresApplicationRecorder._insert_stored_events",
                "(self, curs: 'Cursor[DictRow]', stored_events: 'Sequence[StoredEvent]', "
                "**kwargs: 'Any') -> 'None'",
                "139580714a6590854299f5b5c1630b9cf56c65825cb463eb287bbf97996b29f1",
            ),
            Pin(
                "eventsourcing.postgres:PostgresApplicationRecorder.__init__",
                "(self, datastore: 'PostgresDatastore', *, "
                "events_table_name: 'str' = 'stored_events')",
                "db36fb3de49a5292adbe422c79bfc1ef22658df8f60915befa85d16949b3fa9e",
            ),
            Pin(
                "eventsourcing.postgres:PostgresApplicationRecorder._lock_table",
                "(self, curs: 'Cursor[DictRow]') -> 'None'",
                "42bc9c135b4a93c1e1ba4b3788eab049b605e48f2e49657630037d16382d6d9c",
            ),
            Pin(
                "eventsourcing.postgres:PostgresAggregateRecorder.__init__",
                "(self, datastore: 'PostgresDatastore', *, "
                "events_table_name: 'str' = 'stored_events')",
                "78adbde8e22843caf9a353dacbe9ebfa3f9e047e6a7cce05d50067d510e1a4a7",
            ),
        ),
    ),
    "Channels _clean_expired": Patch(
        ours="infra/realtime/layers.py: InMemoryPushLayer (_clean_expired, send, group_send)",
        distribution="channels",
        version="4.3.2",
        pins=(
            Pin(
                "channels.layers:InMemoryChannelLayer._clean_expired",
                "(self)",
                "604032dae1cc01d27a51d5b8faf45286c8881a14ce6f0abab7438087568ba6b6",
            ),
            Pin(
                "channels.layers:InMemoryChannelLayer.send",
                "(self, channel, message)",
                "a4dab1cd8aff886ec3763192f62126736e59801b4a3661f20db47e92651323e1",
            ),
            Pin(
                "channels.layers:InMemoryChannelLayer.group_send",
                "(self, group, message)",
                "693c3172deb6431bc7f4995484071ccc24a03eaf0f6c783fe3e0349fe2a7c6d7",
            ),
            Pin(
                "channels.layers:InMemoryChannelLayer.receive",
                "(self, channel)",
                "e615f8ae40b60e128f833fd812180fb01587cb5067705cb46fdfedae55851c03",
            ),
        ),
    ),
    "channels_redis shared decoding": Patch(
        ours="infra/realtime/layers.py: PushPubSubLayer (deserialize)",
        distribution="channels_redis",
        version="4.3.0",
        pins=(
            Pin(
                "channels_redis.pubsub:RedisPubSubChannelLayer._get_layer",
                "(self)",
                "1862b87a25ac72b2512da2fa30e56f87ca4b37f6874f1385d2ceb5e8b442079c",
            ),
            Pin(
                "channels_redis.pubsub:RedisPubSubChannelLayer.deserialize",
                "(self, message)",
                "efb14181c02c1adf2cf245cbf020ae7f4703d0472aa0ba2e7c9cbbbc53398e1d",
            ),
            Pin(
                "channels_redis.pubsub:RedisPubSubLoopLayer.receive",
                "(self, channel)",
                "2d3fa7938ba6e0a67de22b47d7af2b6e492bbbdacce4725868239d854b845de4",
            ),
            Pin(
                "channels_redis.pubsub:RedisSingleShardConnection._receive_message",
                "(self, message)",
                "2f5f46af28e8ed76a78c8dabe8831ee21e2b061f32d15e90e5a0ddd94c63c54f",
            ),
        ),
    ),
    "psycopg pipeline prepared statements": Patch(
        ours="infra/postgres/prepared.py: PipelineSafePrepareManager, EventStoreConnection",
        distribution="psycopg",
        version="3.3.9",
        pins=(
            Pin(
                "psycopg._preparing:PrepareManager.maybe_add_to_cache",
                "(self, query: 'PostgresQuery', prep: 'Prepare', name: 'bytes') -> 'Key | None'",
                "cc8322856abea77a84fe69f72c5c6d81b28d24011345a0822a281910366359a0",
            ),
            Pin(
                "psycopg._preparing:PrepareManager.validate",
                "(self, key: 'Key', prep: 'Prepare', name: 'bytes', "
                "results: 'Sequence[PGresult]') -> 'None'",
                "76c655be05eda228f33360cf628f2e1e4c7cdbc6183d87ada72d410f9bcc5bbf",
            ),
            Pin(
                "psycopg._preparing:PrepareManager.get",
                "(self, query: 'PostgresQuery', prepare: 'bool | None' = None) "
                "-> 'tuple[Prepare, bytes]'",
                "92bd48792422291848f47d97c839bbd98e961c0c8c0e4d8dc070069f464a884d",
            ),
            Pin(
                "psycopg._cursor_base:BaseCursor._maybe_prepare_gen",
                "(self, pgq: 'PostgresQuery', *, prepare: 'bool | None' = None, "
                "binary: 'bool | None' = None) -> 'PQGen[None]'",
                "86dc8e74d068ef7649664326b1d673f954f65528f7c8f1c222b6490785f24fc9",
            ),
            Pin(
                "psycopg._pipeline_base:BasePipeline._process_results",
                "(self, queued: 'PendingResult', results: 'list[PGresult]') -> 'None'",
                "ea5c5d588a64c3dea04e5c371b8b061439599f2783f78ea5c63d1d109a5b466d",
            ),
            Pin(
                "psycopg._connection_base:BaseConnection.__init__",
                "(self, pgconn: 'PGconn')",
                "fcf75dfaf79989416cf30ff6d016ef311880da9a03b54626123ac277f78bb2ab",
            ),
        ),
    ),
}


def upstream(symbol: str) -> Any:
    """The function a pin names, as defined upstream (a property's getter)."""
    module, _, qualname = symbol.partition(":")
    owner: object = importlib.import_module(module)
    *path, name = qualname.split(".")
    for part in path:
        owner = getattr(owner, part)
    found = inspect.getattr_static(owner, name)
    return found.fget if isinstance(found, property) else found


def advice(name: str, patch: Patch) -> str:
    return (
        f"Re-verify the patch {name!r} ({patch.ours}) against this upstream change, as "
        "docs/upstream-patches.md describes, then update its version, signatures and hashes "
        "in tests/unit/test_upstream_pins.py"
    )


@pytest.mark.parametrize("name", PATCHES)
def test_the_upstream_code_a_patch_relies_on_is_the_pinned_one(name: str) -> None:
    patch = PATCHES[name]
    installed = importlib.metadata.version(patch.distribution)
    changed = []
    for pin in patch.pins:
        target = upstream(pin.symbol)
        signature = str(inspect.signature(target))
        digest = hashlib.sha256(inspect.getsource(target).encode()).hexdigest()
        if signature != pin.signature:
            changed.append(f"{pin.symbol}: signature {signature}, pinned {pin.signature}")
        if digest != pin.sha256:
            changed.append(f"{pin.symbol}: source sha256 {digest}, pinned {pin.sha256}")
    assert not changed, (
        f"{patch.distribution} {installed} (patch verified on {patch.version}) changed what "
        f"the patch relies on:\n  " + "\n  ".join(changed) + f"\n{advice(name, patch)}."
    )


def test_djangos_pools_are_still_a_class_wide_dict_by_alias() -> None:
    """``get_connection_params`` reads ``_connection_pools`` (not a function, so not
    hashed above): Django's class-wide dict of pools by database alias."""
    from django.db.backends.postgresql.base import DatabaseWrapper

    pools = vars(DatabaseWrapper).get("_connection_pools")
    assert isinstance(pools, dict), advice(
        "Django _connection_pools", PATCHES["Django _connection_pools"]
    )
