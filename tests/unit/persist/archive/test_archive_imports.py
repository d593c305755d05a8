"""boto3 is an optional extra: nothing loads it unless the s3 backend is used."""

import subprocess
import sys
from pathlib import Path

PROBE = """
import sys
from pathlib import Path
import joblet.cli.main, joblet.daemon.main
from joblet.persist.archive.config import S3Config
from joblet.persist.config import PersistConfig, load_persist_config
from joblet.persist.service import PersistService

root = Path(sys.argv[1])
cfg = root / "c.yml"
cfg.write_text("persist: {backend: s3, s3: {bucket: b-1, region: eu-west-1}}\\n")
assert load_persist_config(cfg).s3 is not None
PersistService(PersistConfig.for_root(root / "local"))
print("after local:", "boto3" in sys.modules, "botocore" in sys.modules)
PersistService(PersistConfig.for_root(root / "s3", s3=S3Config("b-1"), node_id="n1"))
print("after s3:", "boto3" in sys.modules)
"""


def test_boto3_is_loaded_only_by_the_s3_backend(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["after local: False False", "after s3: True"]
