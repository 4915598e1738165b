"""Docs that cannot drift from the code: the README's --help and schema, and ruff."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import ROOT

from pipeline.schema import TABLES

README = (ROOT / "README.md").read_text(encoding="utf-8")


def block(marker: str) -> str:
    match = re.search(rf"<!-- {re.escape(marker)} -->\n(.*?)<!-- end {re.escape(marker)} -->", README, re.S)
    assert match, f"README has no {marker} block"
    return match.group(1)


def test_readme_shows_the_current_run_help():
    env = {**os.environ, "COLUMNS": "80"}
    proc = subprocess.run(
        [sys.executable, "-m", "crawler", "run", "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert block("run --help") == f"```\n{proc.stdout}```\n"


def test_readme_schema_names_every_table_and_column():
    schema = block("schema")
    for table, (columns, _) in TABLES.items():
        assert f"| `{table}` |" in schema, table
        rows = schema.split(f"| `{table}` |", 1)[1].split("\n| `", 1)[0]
        for column in columns:
            assert f"`{column}`" in rows, f"{table}.{column} is not in the README"


def test_quick_start_commands_are_the_ones_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install . && python -m crawler run" in README
    assert "pip install -e '.[test]' && python -m pytest" in README
    assert "pip install -e '.[test]' && python -m pytest" in ci


def test_ruff_is_clean():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", str(ROOT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout
