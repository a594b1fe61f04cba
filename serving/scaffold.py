"""`featurestore init DIR`: a new feature repository that builds and serves out of the box.

The repository is a dbt project of its own that installs this project as a dbt package
(the macros, the generic tests and the on-run-start checks, none of the example models),
with its own profile (a DuckDB file under its target/, UTC sessions), the exercise's data
(`data/user_features.parquet`, written the way pandas writes it, and a label spine), one
feature view, a training set guarded by the leakage tests, and a README.

Everything is written into a temporary folder beside DIR and renamed into place at the
end, so a failure leaves nothing behind.
"""

from __future__ import annotations

import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

import serving
from serving.errors import FeatureStoreError

PACKAGE_NAME = "feature_store"
# The exercise's calendar: daily snapshots from START, and a fixed seed, so every
# repository starts with the same data and the README's outputs hold.
START = pd.Timestamp("2026-01-01")
DAYS = 30
USERS = 50
SEED = 20260101
SNAPSHOT_SHARE = 0.8  # days with a snapshot; the gaps make the one-day TTL visible
SPINE_PER_USER = 3


class ScaffoldError(FeatureStoreError):
    """The target folder or the package location does not allow a new repository."""


@dataclass(frozen=True)
class Scaffold:
    """What `init_repository` wrote: the folder, the dbt project name, the files (relative)."""

    directory: Path
    project_name: str
    package_dir: Path
    files: tuple[str, ...]


def package_dir() -> Path:
    """The feature_store dbt project: the folder above the installed `serving` package (an
    editable install from a clone, as `./dev setup` makes)."""
    root = Path(serving.__file__).resolve().parent.parent
    project = root / "dbt_project.yml"
    try:
        found = re.search(r"^name:\s*['\"]?(\w+)", project.read_text(), re.MULTILINE)
    except OSError:
        found = None
    if not found or found.group(1) != PACKAGE_NAME:
        raise ScaffoldError(
            f"the {PACKAGE_NAME} dbt project is not beside the installed serving package (looked for {project}); "
            "install the package from a clone (pip install -e <clone>) so the new repository can use it as a dbt package"
        )
    return root


def project_name(directory: Path) -> str:
    """A dbt project name from the folder's name: lower case letters, digits and underscores,
    not starting with a digit, and never the package's own name."""
    name = re.sub(r"[^a-z0-9_]+", "_", directory.name.lower()).strip("_") or "features"
    if name[0].isdigit():
        name = f"features_{name}"
    return f"{name}_repo" if name == PACKAGE_NAME else name


def init_repository(directory: str | Path) -> Scaffold:
    """Writes a new feature repository at `directory`, which must be missing or empty."""
    target = Path(directory).absolute()
    if target.exists() and not target.is_dir():
        raise ScaffoldError(f"{directory} is a file; give a new or empty folder")
    if target.is_dir() and any(target.iterdir()):
        raise ScaffoldError(f"{directory} is not empty; give a new or empty folder, so that no file of yours is overwritten")
    if not target.parent.is_dir():
        raise ScaffoldError(f"the parent folder of {directory} does not exist; create {target.parent} first")
    package = package_dir()
    name = project_name(target)
    # Beside the target (same file system, so the final rename is atomic); mkdir, unlike
    # mkdtemp, gives the folder the usual permissions.
    staging = target.parent / f".{target.name}.init-{secrets.token_hex(4)}"
    try:
        staging.mkdir()
    except OSError as error:
        raise ScaffoldError(f"cannot create {directory}: {error.strerror}") from error
    try:
        files = _write_files(staging, name, package)
        if target.is_dir():
            target.rmdir()
        staging.rename(target)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise ScaffoldError(f"cannot create {directory}: {error.strerror or error}; nothing was written") from error
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Scaffold(target, name, package, tuple(files))


def _write_files(root: Path, name: str, package: Path) -> list[str]:
    files = {
        "dbt_project.yml": _dbt_project(name),
        "packages.yml": _packages(package),
        "profiles.yml": _profiles(name),
        ".gitignore": "target/\ndbt_packages/\nlogs/\n*.duckdb\n*.duckdb.wal\n",
        "README.md": _readme(name),
        "models/sources.yml": SOURCES_YML,
        "models/user_features.sql": USER_FEATURES_SQL,
        "models/user_features.yml": USER_FEATURES_YML,
        "models/training_set.sql": TRAINING_SET_SQL,
        "models/training_set.yml": TRAINING_SET_YML,
    }
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "data").mkdir()
    snapshots = user_features()
    snapshots.to_parquet(root / "data" / "user_features.parquet", index=False)
    label_spine(snapshots).to_parquet(root / "data" / "label_spine.parquet", index=False)
    return [*files, "data/user_features.parquet", "data/label_spine.parquet"]


def user_features(seed: int = SEED) -> pd.DataFrame:
    """Daily per-user purchase snapshots at midnight, as pandas holds them: int64 keys and
    counts, float64 amounts, naive timestamps (meaning UTC). Each row counts the purchases
    made before its timestamp; some days have no snapshot."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(1, USERS + 1):
        purchases = int(rng.integers(1, 6))
        spent = float(np.round(rng.lognormal(3.0, 0.6) * purchases, 2))
        last = -int(rng.integers(1, 20))
        for day in range(DAYS):
            if rng.random() < SNAPSHOT_SHARE:
                rows.append((user, START + pd.Timedelta(days=day), purchases, round(spent / purchases, 2), day - last))
            bought = int(rng.poisson(0.3))
            if bought:
                purchases += bought
                spent += float(np.round(rng.lognormal(3.0, 0.6) * bought, 2))
                last = day
    frame = pd.DataFrame(
        rows, columns=["user_id", "event_timestamp", "total_purchases", "avg_purchase_amount", "days_since_last_purchase"]
    )
    return frame.astype(
        {"user_id": "int64", "event_timestamp": "datetime64[us]", "total_purchases": "int64", "days_since_last_purchase": "int64"}
    )


def label_spine(snapshots: pd.DataFrame, seed: int = SEED) -> pd.DataFrame:
    """Prediction times inside the snapshot period with a label: did the user's purchase
    count grow in the following week? (Computed from the snapshots, so it is consistent.)"""
    rng = np.random.default_rng(seed + 1)
    users = np.repeat(snapshots["user_id"].unique(), SPINE_PER_USER)
    seconds = rng.integers(86_400, (DAYS - 7) * 86_400, size=len(users))
    spine = pd.DataFrame({"user_id": users, "prediction_time": START + pd.to_timedelta(seconds, unit="s")})
    history = snapshots.sort_values("event_timestamp")

    def grows(user: int, at: pd.Timestamp) -> bool:
        counts = history.loc[history["user_id"] == user].set_index("event_timestamp")["total_purchases"]
        before = counts[counts.index <= at]
        after = counts[counts.index <= at + pd.Timedelta(days=7)]
        return bool(len(before) and len(after) and after.iloc[-1] > before.iloc[-1])

    spine["label"] = [grows(user, at) for user, at in zip(spine["user_id"], spine["prediction_time"])]
    return spine.astype({"user_id": "int64", "prediction_time": "datetime64[us]"})


def _dbt_project(name: str) -> str:
    return f"""# A feature repository (made by `featurestore init`): feature views are dbt models whose
# YAML carries config.meta.feature_store; see README.md.
name: {name}
version: "0.1.0"
config-version: 2
profile: {name}

model-paths: ["models"]
target-path: target
clean-targets: [target, dbt_packages]

vars:
  # Folder holding the Parquet files that models/sources.yml reads (relative to where dbt runs).
  data_path: data

# feature_store overrides a few of dbt's own macros (the contract checks on Postgres and Spark,
# so a YAML data_type is written once for every engine); dbt uses a package's override of a
# dbt macro only when the project asks for it here.
dispatch:
  - macro_namespace: dbt
    search_order: [{name}, {PACKAGE_NAME}, dbt]

models:
  {name}:
    +materialized: table
"""


def _packages(package: Path) -> str:
    return f"""# The feature-store macros, generic tests and on-run-start checks, as a dbt package
# (its example models stay out of this project). `dbt deps` installs it into dbt_packages/.
# From a local clone:
packages:
  - local: {package}
# Or from git, pinned to a tag or commit (replace the local entry above):
#  - git: "https://github.com/<owner>/<repository>.git"
#    revision: <tag or commit>
"""


def _profiles(name: str) -> str:
    return f"""# dbt reads this file from the project folder, so no ~/.dbt is needed.
{name}:
  target: duckdb
  outputs:
    duckdb:
      type: duckdb
      # The offline store. featurestore reads the same file: FEATURE_STORE_DUCKDB moves both.
      path: "{{{{ env_var('FEATURE_STORE_DUCKDB', 'target/warehouse.duckdb') }}}}"
      threads: 2
      settings:
        # Every time rule assumes a UTC session: a naive timestamp means UTC.
        TimeZone: UTC
"""


def _readme(name: str) -> str:
    return f"""# {name}: a feature repository

Made by `featurestore init`. A dbt project that uses the `{PACKAGE_NAME}` dbt package
(`packages.yml`): feature views are dbt models, `dbt build` computes them in DuckDB
(`target/warehouse.duckdb`), and `featurestore` serves them.

| path | what it holds |
|---|---|
| `data/user_features.parquet` | daily per-user snapshots: `user_id`, `event_timestamp` (naive, UTC), `total_purchases`, `avg_purchase_amount`, `days_since_last_purchase` |
| `data/label_spine.parquet` | `user_id`, `prediction_time`, `label`: the rows of the training set |
| `models/sources.yml` | the Parquet files as dbt sources |
| `models/user_features.sql`, `.yml` | the feature view `user_features`: key `user_id`, ttl 1 day, online |
| `models/training_set.sql`, `.yml` | the label spine joined point-in-time with `user_features`, with the leakage tests |

Your own data: replace `data/user_features.parquet` with your file (same column names;
types as pandas writes them: int64, float64, naive timestamps), or add a table to
`models/sources.yml` and a model with its YAML for each new feature view.

```bash
dbt deps && dbt build                      # install the package, build and test every model
featurestore list                          # the feature views
featurestore materialize --as-of 2026-01-31T00:00:00Z    # export to Redis ($REDIS_URL)
featurestore get user_features:total_purchases --entity user_id=1
```
"""


SOURCES_YML = """version: 2

sources:
  - name: files
    description: Parquet files in the folder given by the `data_path` var, one per table.
    config:
      external_location: "read_parquet('{{ var('data_path') }}/{name}.parquet')"
    tables:
      - name: user_features
        description: Daily per-user purchase snapshots exported by an upstream system.
      - name: label_spine
        description: Users, prediction times and labels; the rows of the training set.
"""

USER_FEATURES_SQL = """-- The feature view: one row per user and snapshot. An ordinary select; the metadata that
-- makes it a feature view is in user_features.yml.
select
    user_id,
    -- pandas before 3.0 writes nanoseconds; the store compares microseconds.
    cast(event_timestamp as timestamp) as event_timestamp,
    total_purchases,
    avg_purchase_amount,
    days_since_last_purchase
from {{ source('files', 'user_features') }}
"""

USER_FEATURES_YML = """version: 2

models:
  - name: user_features
    description: Daily per-user purchase snapshots; each is valid for one day.
    config:
      contract: {enforced: true}
      meta:
        feature_store:
          entity: user_id
          timestamp_column: event_timestamp
          ttl: 1 day
          online: true
          tags: [user, snapshot]
    data_tests:
      - feature_store.unique_combination:
          arguments: {columns: [user_id, event_timestamp]}
    columns:
      - name: user_id
        data_type: bigint
        description: The user.
        data_tests: [not_null]
      - name: event_timestamp
        data_type: timestamp
        description: When the snapshot was taken (UTC).
        data_tests: [not_null]
      - name: total_purchases
        data_type: bigint
        description: Purchases before the snapshot.
      - name: avg_purchase_amount
        data_type: double
        description: Average purchase amount before the snapshot.
      - name: days_since_last_purchase
        data_type: bigint
        description: Days since the last purchase before the snapshot.
"""

TRAINING_SET_SQL = """-- The training set: every labelled prediction time, in spine order, with user_features
-- as known at that time (point-in-time correct, the one-day TTL applied).
{{ feature_store.point_in_time_join(
    spine=source('files', 'label_spine'),
    spine_timestamp='prediction_time',
    feature_views=['user_features'],
    include_timestamps=true
) }}
"""

TRAINING_SET_YML = """version: 2

models:
  - name: training_set
    description: The label spine point-in-time joined with user_features; one row per spine row.
    data_tests:
      # A point-in-time join never drops or repeats a spine row.
      - feature_store.row_count_equals:
          arguments:
            compare_model: source('files', 'label_spine')
    columns:
      - name: user_id
        data_tests: [not_null]
      # No feature may come from after the prediction time.
      - name: user_features__event_timestamp
        data_tests:
          - feature_store.no_future_features:
              arguments: {at: prediction_time}
"""
