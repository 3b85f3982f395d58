import os
import sys

from pipelines.cli import main

code = main()
# Every command has closed its connections and written its files by now. The interpreter's
# own teardown would then free Great Expectations' module graph (scipy, pandas, altair,
# sqlalchemy: ~1.5 s of a `demo` or `run`, measured) for nothing: leave at once.
try:
    sys.stdout.flush()
    sys.stderr.flush()
except (BrokenPipeError, OSError):  # the reader stopped early (`... | head`): nothing left to say
    pass
os._exit(int(code or 0))
