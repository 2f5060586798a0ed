"""Run inside an image: every shared object of its virtual environment, checked with `ldd`.

Prints JSON {object (relative to site-packages): [sonames ldd cannot find]}. The search path holds every folder
of the environment that has shared objects, as the process has them once MindSpore loaded its own libraries,
so what remains unresolved is what neither the wheels nor the system provide.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

site = next(Path("/opt/venv/lib").glob("python3*/site-packages"))
objects = sorted(path for path in site.rglob("*.so*") if path.is_file() and not path.is_symlink())
search = ":".join(sorted({str(path.parent) for path in objects}))
missing = {}
for path in objects:
    listed = subprocess.run(
        ["ldd", str(path)], capture_output=True, text=True, check=False, env={**os.environ, "LD_LIBRARY_PATH": search}
    ).stdout
    names = sorted(line.split("=>")[0].strip() for line in listed.splitlines() if "not found" in line)
    if names:
        missing[str(path.relative_to(site))] = names
json.dump(missing, sys.stdout)
