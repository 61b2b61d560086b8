"""The ClickHouse server adapter's reader threads in a forked process."""

from __future__ import annotations

import os
import signal
import uuid

import pytest

from infra.clickhouse.native import ClickHouseServerDatabase

READS = ["SELECT 1", "SELECT 2", "SELECT 3"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_reads_at_once_too(clickhouse_url: str) -> None:
    """``query_all`` used in the parent (its reader threads started), then a fork: the child,
    which has none of those threads, still gets its answers (a pool of its own), not a wait
    forever on threads that do not exist there."""
    name = f"fork_{uuid.uuid4().hex[:12]}"
    parent = ClickHouseServerDatabase(clickhouse_url, database=name)
    try:
        assert parent.query_all(READS) == [[(1,)], [(2,)], [(3,)]]
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: answer within 20 s, or be stopped by the alarm
            code = 1
            try:
                os.close(read_end)
                signal.alarm(20)
                child = ClickHouseServerDatabase(clickhouse_url, database=name, create=False)
                rows = child.query_all(READS)
                os.write(write_end, repr(rows).encode())
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            said = pipe.read().decode()
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, said
        assert said == "[[(1,)], [(2,)], [(3,)]]"
    finally:
        parent.drop()
        parent.close()
