"""The README's Python example runs as written against the installed package and prints what
the bundled sample node holds (nodestatus/samples/README.md: BIRD 1.6.8, router ID
10.77.0.1, two Established mesh peers, the node's /26 blackhole)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def python_blocks(text: str):
    return re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)


def test_readme_python_example_runs_as_written(tmp_path):
    blocks = python_blocks(README.read_text(encoding="utf-8"))
    assert len(blocks) == 1, "one Python example in the README"
    script = tmp_path / "readme_example.py"
    script.write_text(blocks[0], encoding="utf-8")
    # -I: no current directory, no PYTHONPATH: only the installed package can answer
    proc = subprocess.run([sys.executable, "-I", str(script)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "192.168.1.0/26 blackhole None" in lines
    assert {"Mesh_10_77_0_2 up Established", "Mesh_10_77_0_3 up Established"} <= set(lines)
    assert lines[-1] == "1.6.8 10.77.0.1"
