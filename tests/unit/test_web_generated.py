"""The web app's generated modules are what their generators make of the code now.

``web/src/lib/openapi.gen.ts`` comes from the OpenAPI schema (drf-spectacular, then the pinned
openapi-typescript through ``npm run api-types``), ``web/src/lib/lifecycle.gen.ts`` from
``domain.lifecycle``. ``make web-generate`` rewrites both; these tests fail when either is stale.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from django.core.management import call_command

from domain.lifecycle import render_typescript
from projections.notifications import KINDS
from read_api.serializers import NOTIFICATION_KINDS

WEB = Path(__file__).resolve().parents[2] / "web"
STALE = "is stale: run `make web-generate` and commit the result"


def test_lifecycle_module_is_generated_from_the_domain_table() -> None:
    module = WEB / "src/lib/lifecycle.gen.ts"
    assert module.read_text() == render_typescript(), f"{module} {STALE}"


def test_api_types_are_generated_from_the_current_schema(tmp_path: Path) -> None:
    cli = WEB / "node_modules/.bin/openapi-typescript"
    assert cli.exists(), "web/node_modules is missing: run `make web` (npm ci) first"
    schema = tmp_path / "schema.yml"
    call_command("spectacular", "--file", str(schema), "--validate", "--fail-on-warn")
    generated = subprocess.run(
        ["npm", "run", "--silent", "api-types", "--", str(schema)],
        cwd=WEB,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    assert "export interface components" in generated
    module = WEB / "src/lib/openapi.gen.ts"
    assert module.read_text() == generated, f"{module} {STALE}"


def test_the_schemas_notification_kinds_are_the_projectors() -> None:
    # read_api spells them out: importing the projector would load the Ticket aggregate.
    assert list(KINDS) == NOTIFICATION_KINDS
