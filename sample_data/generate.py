"""Deterministic e-commerce sample data for the feature store, written as Parquet.

    python sample_data/generate.py --out data/sample --users 2000 --days 90 --seed 7

Writes users, products, purchases (with late-arriving corrections), a daily
`user_features` snapshot and a label spine. The same seed and flags always give
byte-identical data, so tests and benchmarks can rebuild it at will. Each file carries a
marker in its Parquet metadata; a file without it is someone else's and is never replaced.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

START = pd.Timestamp("2026-01-01", tz="UTC")
CATEGORIES = ["books", "electronics", "garden", "grocery", "toys", "fashion"]
CORRECTION_SHARE = 0.01
LABEL_HORIZON = pd.Timedelta(days=7)
SNAPSHOT_SHARE = 0.7  # share of days with a user_features snapshot; the gaps exercise the TTL


# Marks a file as generated here: only such files are ever replaced by a later run.
MARKER = b"feature_store.sample_data"


class NotOurFileError(Exception):
    """The output folder holds a file of the same name that this generator did not write."""


def _write(frame: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), MARKER: b"1"})
    # Microsecond timestamps: the feature store's precision, and what Spark's Parquet
    # reader accepts (it refuses nanosecond ones). Written beside the target, then renamed,
    # so an interrupted run leaves no half-written file.
    partial = path.with_name(path.name + ".partial")
    pq.write_table(table, partial, coerce_timestamps="us")
    partial.replace(path)


def _check_replaceable(paths: list[Path]) -> None:
    """Refuses, before anything is written, to replace a file this generator did not write."""
    for path in paths:
        if not path.exists():
            continue
        try:
            ours = MARKER in (pq.read_schema(path).metadata or {})
        except (OSError, pa.ArrowInvalid):
            ours = False
        if not ours:
            raise NotOurFileError(
                f"{path} exists and was not written by this generator; nothing was written. "
                "Move it away or choose another folder with --out"
            )


def products(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "product_id": np.arange(1, n + 1, dtype=np.int64),
            "category": rng.choice(CATEGORIES, size=n),
            "price": np.round(rng.lognormal(3.0, 0.8, size=n), 2),
        }
    )


def users(rng: np.random.Generator, n: int, days: int) -> pd.DataFrame:
    signup_offsets = rng.integers(0, days * 86_400, size=n) - days * 86_400
    return pd.DataFrame(
        {
            "user_id": np.arange(1, n + 1, dtype=np.int64),
            "country": rng.choice(["DE", "FR", "US", "JP", "BR"], size=n),
            "signup_at": START + pd.to_timedelta(signup_offsets, unit="s"),
        }
    )


def purchases(rng: np.random.Generator, user_ids: np.ndarray, product_frame: pd.DataFrame, days: int) -> pd.DataFrame:
    # Each user buys at their own rate; times cluster in the evening like real shops.
    rates = rng.gamma(0.6, 0.5, size=len(user_ids))
    counts = rng.poisson(rates * days)
    buyer = np.repeat(user_ids, counts)
    n = len(buyer)
    day = rng.integers(0, days, size=n)
    hour = np.clip(rng.normal(19, 4, size=n), 0, 23.999)
    seconds = (day * 86_400 + hour * 3_600).astype(np.int64)
    product_idx = rng.integers(0, len(product_frame), size=n)
    event_ts = START + pd.to_timedelta(seconds, unit="s")
    ingest_delay = pd.to_timedelta(rng.integers(1, 600, size=n), unit="s")
    frame = pd.DataFrame(
        {
            "purchase_id": np.arange(1, n + 1, dtype=np.int64),
            "user_id": buyer,
            "product_id": product_frame["product_id"].to_numpy()[product_idx],
            "category": product_frame["category"].to_numpy()[product_idx],
            "amount": np.round(product_frame["price"].to_numpy()[product_idx] * rng.integers(1, 4, size=n), 2),
            "event_timestamp": event_ts,
            "created_timestamp": event_ts + ingest_delay,
        }
    )
    # Late-arriving corrections: same purchase and event time, new amount, later created time.
    fixed = frame.sample(frac=CORRECTION_SHARE, random_state=int(rng.integers(1 << 31))).copy()
    fixed["amount"] = np.round(fixed["amount"] * 0.5, 2)
    fixed["created_timestamp"] = fixed["created_timestamp"] + pd.Timedelta(days=2)
    frame = pd.concat([frame, fixed], ignore_index=True)
    return frame.sort_values(["event_timestamp", "purchase_id", "created_timestamp"], kind="stable", ignore_index=True)


def user_features(rng: np.random.Generator, purchase_frame: pd.DataFrame, days: int) -> pd.DataFrame:
    """Daily snapshots (as an upstream system would export them) of each buyer's history."""
    latest = purchase_frame.sort_values("created_timestamp").drop_duplicates("purchase_id", keep="last")
    latest = latest.sort_values(["user_id", "event_timestamp"], kind="stable")
    rows = []
    for day in range(1, days + 1):
        snapshot_at = START + pd.Timedelta(days=day)
        seen = latest[latest["event_timestamp"] < snapshot_at]
        if seen.empty:
            continue
        stats = seen.groupby("user_id").agg(
            total_purchases=("purchase_id", "count"),
            avg_purchase_amount=("amount", "mean"),
            last_purchase=("event_timestamp", "max"),
        )
        stats = stats[rng.random(len(stats)) < SNAPSHOT_SHARE]
        rows.append(
            pd.DataFrame(
                {
                    "user_id": stats.index.to_numpy(dtype=np.int64),
                    "event_timestamp": snapshot_at,
                    "created_timestamp": snapshot_at + pd.Timedelta(minutes=5),
                    "total_purchases": stats["total_purchases"].to_numpy(dtype=np.int64),
                    "avg_purchase_amount": stats["avg_purchase_amount"].round(4).to_numpy(),
                    "days_since_last_purchase": ((snapshot_at - stats["last_purchase"]).dt.total_seconds() / 86_400)
                    .round(4)
                    .to_numpy(),
                }
            )
        )
    frame = pd.concat(rows, ignore_index=True)
    # A few snapshots are re-exported later with a fixed value: same event time, later created time.
    fixed = frame.sample(frac=CORRECTION_SHARE, random_state=int(rng.integers(1 << 31))).copy()
    fixed["avg_purchase_amount"] = (fixed["avg_purchase_amount"] + 1.0).round(4)
    fixed["created_timestamp"] = fixed["created_timestamp"] + pd.Timedelta(hours=6)
    return pd.concat([frame, fixed], ignore_index=True)


def label_spine(rng: np.random.Generator, user_ids: np.ndarray, purchase_frame: pd.DataFrame, days: int, per_user: int) -> pd.DataFrame:
    """Prediction times with label = the user buys within the next 7 days."""
    n = len(user_ids) * per_user
    user = rng.choice(user_ids, size=n)
    # Leave the last week out so every label can be observed.
    offsets = rng.integers(7 * 86_400, (days - 7) * 86_400, size=n)
    prediction_time = START + pd.to_timedelta(offsets, unit="s")
    spine = pd.DataFrame({"user_id": user.astype(np.int64), "prediction_time": prediction_time})
    # A few exact duplicates: a training set must keep them.
    spine = pd.concat([spine, spine.sample(frac=0.005, random_state=int(rng.integers(1 << 31)))], ignore_index=True)

    times_by_user = {
        uid: group.to_numpy()
        for uid, group in purchase_frame.drop_duplicates("purchase_id").groupby("user_id")["event_timestamp"]
    }
    labels = np.zeros(len(spine), dtype=bool)
    for i, (uid, t) in enumerate(zip(spine["user_id"].to_numpy(), spine["prediction_time"])):
        times = times_by_user.get(uid)
        if times is not None:
            labels[i] = bool(((times > t) & (times <= t + LABEL_HORIZON)).any())
    spine["label"] = labels
    return spine


def generate(out: Path, n_users: int, n_products: int, days: int, spine_per_user: int, seed: int) -> dict[str, int]:
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    product_frame = products(rng, n_products)
    user_frame = users(rng, n_users, days)
    purchase_frame = purchases(rng, user_frame["user_id"].to_numpy(), product_frame, days)
    frames = {
        "products": product_frame,
        "users": user_frame,
        "purchases": purchase_frame,
        "user_features": user_features(rng, purchase_frame, days),
        "label_spine": label_spine(rng, user_frame["user_id"].to_numpy(), purchase_frame, days, spine_per_user),
    }
    _check_replaceable([out / f"{name}.parquet" for name in frames])
    for name, frame in frames.items():
        _write(frame, out / f"{name}.parquet")
    return {name: len(frame) for name, frame in frames.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("data/sample"), help="output folder (default: data/sample)")
    parser.add_argument("--users", type=int, default=2_000, help="number of users (default: 2000)")
    parser.add_argument("--products", type=int, default=300, help="number of products (default: 300)")
    parser.add_argument("--days", type=int, default=60, help="days of history (default: 60)")
    parser.add_argument("--spine-per-user", type=int, default=3, help="prediction times per user (default: 3)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default: 7)")
    args = parser.parse_args(argv)
    if args.days < 15:
        parser.error("--days must be at least 15: labels look 7 days ahead")
    try:
        counts = generate(args.out, args.users, args.products, args.days, args.spine_per_user, args.seed)
    except NotOurFileError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    print("wrote " + ", ".join(f"{name}={rows}" for name, rows in counts.items()) + f" to {args.out}")


if __name__ == "__main__":
    main()
