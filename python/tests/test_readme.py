"""The README's Python example runs and prints what the README says."""

import os
import re
import subprocess
import sys


def test_the_readme_example_runs(source_dir):
    readme = open(os.path.join(source_dir, "README.md")).read()
    section = readme[readme.index("## Python"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len(code.strip().splitlines()) <= 12
    expected = re.search(r"print\(.*\)\s+# (.*)", code).group(1)
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == expected
