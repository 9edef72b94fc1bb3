#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the README's C++ snippets out as translation units for the
readme_* tests (tests/readme/CMakeLists.txt), so that they cannot drift from
the API.

A snippet is a ```cpp block right after a line `<!-- snippet: NAME KIND
[rt] -->`. KIND is
  program  a whole program with main(): compiled with -Werror and run;
  body     statements: placed in main() after prelude.hpp (a check() for
           a Status; with `rt`, a running Runtime `rt`),
           with its #include lines moved to file scope; compiled and run;
  compile  a whole .cu translation unit: compiled only.
Usage: extract.py README.md OUT_DIR. Prints one line per snippet: NAME KIND FILE.
"""
import pathlib
import re
import sys

TAG = re.compile(r"^<!-- snippet: (\w+) (program|body|compile)( rt)? -->$")


def snippets(text):
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = TAG.match(line.strip())
        if not m:
            continue
        if i + 1 >= len(lines) or lines[i + 1].strip() != "```cpp":
            sys.exit(f"README line {i + 1}: a snippet tag must be followed by a ```cpp block")
        end = next((j for j in range(i + 2, len(lines)) if lines[j].strip() == "```"), None)
        if end is None:
            sys.exit(f"README line {i + 1}: unterminated ```cpp block")
        yield m.group(1), m.group(2), bool(m.group(3)), i + 3, lines[i + 2:end]


def main():
    readme, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    seen = set()
    for name, kind, with_rt, first_line, body in snippets(readme.read_text()):
        if name in seen:
            sys.exit(f"README: two snippets named {name}")
        seen.add(name)
        line_directive = f'#line {first_line} "{readme}"'
        if kind == "body":
            includes = [l for l in body if l.lstrip().startswith("#include")]
            code = [l if not l.lstrip().startswith("#include") else "" for l in body]
            setup = "  std::unique_ptr<Runtime> rt;\n  check(Runtime::create(Config{}, &rt));\n" if with_rt else ""
            source = ('#include "prelude.hpp"\n' + "\n".join(includes) + "\n\nint main() {\n" + setup +
                      line_directive + "\n" + "\n".join(code) + "\n  return 0;\n}\n")
        else:
            source = line_directive + "\n" + "\n".join(body) + "\n"
        path = out / (name + (".cu" if kind == "compile" else ".cpp"))
        # Rewritten only when changed, so an unrelated README edit rebuilds nothing.
        if not path.exists() or path.read_text() != source:
            path.write_text(source)
        print(name, kind, path)
    if not seen:
        sys.exit("README: no snippets found")


if __name__ == "__main__":
    main()
