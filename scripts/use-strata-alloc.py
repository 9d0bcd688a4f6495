#!/usr/bin/env python3
"""Route every allocation in src/ through alloc.h (strata_malloc and friends).

Rewrites raw malloc/calloc/realloc/posix_memalign calls in src/**/*.c and .h
(not alloc.c, nor h5zstd_filter.h, whose buffers HDF5 owns) and adds
#include "alloc.h" where needed. tests/scripts/test_alloc_sites.sh checks that
no raw call is left. Usage: scripts/use-strata-alloc.py [SRC_DIR]
"""
import pathlib
import re
import sys

src = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "src")
skip = {"alloc.c", "alloc.h", "h5zstd_filter.h"}
call = re.compile(r"(?<![\w.>])(malloc|calloc|realloc|posix_memalign)\(")
for path in sorted(list(src.rglob("*.c")) + list(src.rglob("*.h"))):
    if path.name in skip:
        continue
    text = path.read_text()
    new = call.sub(lambda m: "strata_" + m.group(1) + "(", text)
    if new == text:
        continue
    if '#include "alloc.h"' not in new:
        lines = new.split("\n")
        first = next(i for i, l in enumerate(lines) if l.startswith('#include "'))
        lines.insert(first, '#include "alloc.h"')
        new = "\n".join(lines)
    path.write_text(new)
    print(path)
