"""Examples shown at the end of `--help` of the commands people run most."""

from __future__ import annotations

import argparse

EXAMPLES: dict[str, str] = {
    "run": """examples:
  rnx run echo hello                              # start a job, print its id
  rnx run -f --max-memory 512M python3 app.py     # follow it, exit with its code
  rnx run --upload data.csv --name etl python3 etl.py data.csv
  rnx run --schedule 10m sh -c 'date; uptime'     # run it ten minutes from now""",
    "list": """examples:
  rnx list                                  # every job, newest first
  rnx list --status RUNNING,FAILED --limit 5
  rnx list --name 'web*' -q                 # ids only, for scripts""",
    "log": """examples:
  rnx log JOB                  # the output so far, then live until the job ends
  rnx log --tail 20 JOB        # the last 20 lines, then live
  rnx log --no-follow JOB > out.txt   # the output so far, byte for byte""",
}


def add_examples(name: str, parser: argparse.ArgumentParser) -> None:
    """Append the examples of job action `name`, if it has any, to its help."""
    text = EXAMPLES.get(name)
    if text:
        parser.epilog = text
        # Keep the examples' own line breaks and alignment.
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
