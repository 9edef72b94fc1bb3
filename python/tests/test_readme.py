# SPDX-License-Identifier: Apache-2.0
"""The README's Python snippet (section "From Python") runs as written."""
import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def test_readme_python_snippet():
    pytest.importorskip("numpy")
    text = README.read_text()
    m = re.search(r"<!-- snippet: python_readme -->\n```python\n(.*?)\n```", text, re.S)
    assert m, "README: no python_readme snippet"
    exec(compile(m.group(1), f"{README}:python_readme", "exec"), {})
