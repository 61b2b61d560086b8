"""config/webapp.py: when web/dist counts as stale, what happens without npm, and the
index.html answer for client routes (no database, no network)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.test import RequestFactory, override_settings

from infra.server import webapp


def make_web(tmp_path: Path) -> Path:
    web = tmp_path / "web"
    (web / "src").mkdir(parents=True)
    (web / "src" / "main.tsx").write_text("x")
    (web / "package-lock.json").write_text("{}")
    return web


def build(web: Path, mtime: float) -> None:
    (web / "dist").mkdir(exist_ok=True)
    index = web / "dist" / "index.html"
    index.write_text("<!doctype html><title>app</title>")
    os.utime(index, (mtime, mtime))


def test_dist_is_stale_when_missing_or_older_than_a_source(tmp_path: Path) -> None:
    web = make_web(tmp_path)
    assert webapp.is_stale(web)
    source_time = (web / "src" / "main.tsx").stat().st_mtime
    build(web, source_time + 10)
    assert not webapp.is_stale(web)
    nested = web / "src" / "features" / "x.tsx"
    nested.parent.mkdir()
    nested.write_text("y")
    os.utime(nested, (source_time + 20, source_time + 20))
    assert webapp.is_stale(web)


def test_without_npm_the_build_is_skipped_with_a_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    web = make_web(tmp_path)
    monkeypatch.setattr(webapp.shutil, "which", lambda _name: None)
    problem = webapp.ensure_built(web)
    assert problem is not None
    assert "npm was not found" in problem
    build(web, (web / "src" / "main.tsx").stat().st_mtime + 10)
    assert webapp.ensure_built(web) is None  # current: nothing to do, npm or not


def test_client_routes_get_index_html_or_a_page_that_says_how_to_build(tmp_path: Path) -> None:
    request = RequestFactory().get("/tickets/0b6f3e4c-2d8a-4c1e-9a53-6f1b7c2d9e10")
    with override_settings(WEB_DIST=tmp_path):
        missing = webapp.spa_index(request)
        assert missing.status_code == 503
        assert b"npm ci" in missing.content
        (tmp_path / "index.html").write_text("<!doctype html><title>app</title>")
        found = webapp.spa_index(request)
    assert found.status_code == 200
    assert found["Cache-Control"] == "no-cache"
    assert found.content == b"<!doctype html><title>app</title>"


def test_a_path_that_is_no_client_route_gets_the_shell_with_404(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<!doctype html><title>app</title>")
    with override_settings(WEB_DIST=tmp_path):
        for path in (
            "/",
            "/tickets",
            "/agent",
            "/search",
            "/macros",
            "/rate",
            "/admin/users",
            "/analytics",
        ):
            assert webapp.spa_index(RequestFactory().get(path)).status_code == 200, path
        for path in ("/nope", "/tickets/abc", "/tickets/abc/history", "/agentx"):
            missing = webapp.spa_index(RequestFactory().get(path))
            assert missing.status_code == 404, path
            assert missing.content == b"<!doctype html><title>app</title>"
