#!/usr/bin/env python3
"""The files the files bench reads, under DIRECTORY:

  tree/   10,000 log files of 10,000 bytes (100 MB) in 100 directories; every 97th file holds
          one line with "ERROR upstream timeout", the content the search looks for
  big.log 1 GiB of log lines, for files_tail
  wide/   100,000 empty files in one directory, for a files_list page

Deterministic, so two runs search the same bytes. Usage: make_files.py DIRECTORY"""

import os
import sys

root = sys.argv[1]
tree = os.path.join(root, "tree")
for d in range(100):
    os.makedirs(os.path.join(tree, f"d{d:02}"), exist_ok=True)
for n in range(10_000):
    lines = []
    size = 0
    line_number = 0
    while True:
        line = f"2026-11-24T10:{n % 60:02}:{line_number % 60:02}Z INFO worker={n % 16} request={n * 1000 + line_number} took={line_number % 97}ms\n"
        if n % 97 == 0 and line_number == 40:
            line = f"2026-11-24T10:00:40Z ERROR upstream timeout request={n * 1000 + line_number}\n"
        if size + len(line) > 10_000:
            break
        lines.append(line)
        size += len(line)
        line_number += 1
    text = "".join(lines)
    text += "." * (10_000 - len(text) - 1) + "\n"
    with open(os.path.join(tree, f"d{n % 100:02}", f"f{n:05}.log"), "w") as file:
        file.write(text)

block = "".join(
    f"2026-11-24T11:00:{n % 60:02}Z INFO big log line {n:08} with some ordinary text\n" for n in range(16_384)
).encode()
with open(os.path.join(root, "big.log"), "wb") as file:
    written = 0
    while written < 1 << 30:
        file.write(block)
        written += len(block)

wide = os.path.join(root, "wide")
os.makedirs(wide, exist_ok=True)
for n in range(100_000):
    os.close(os.open(os.path.join(wide, f"entry-{n:06}"), os.O_CREAT | os.O_WRONLY, 0o644))
