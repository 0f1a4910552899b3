"""The redaction boundary at scale: 10k realistic conversations (all twitter-customer-care dialogues, then
bitext and banking77 queries in equal parts, from ../shared/data) through clean, redact and the leak gate,
as the redact stage runs them. The gate must pass (residual share <= redact.max_leak_share): a false
failure here is a nightly that fails on real data. Prints the residual share by kind and type, and time.

``PRIVACY_BENCH_CONVERSATIONS`` changes the size (default 10000).
"""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared/data"


def build_conversations(n: int) -> list:
    """``n`` conversations: every twitter dialogue (multi-turn, real people's tweets), the rest bitext and banking77."""
    from llmops.data.sources import banking77_conversations, bitext_conversations, twitter_conversations

    twitter = list(twitter_conversations(DATA / "twitter-customer-care-cdp/dev.json"))[:n]
    rest = n - len(twitter)
    bitext = itertools.islice(
        bitext_conversations(DATA / "bitext-customer-support/Bitext_Sample_Customer_Support_Training_Dataset.csv"),
        rest - rest // 2,
    )
    banking = itertools.islice(banking77_conversations(DATA / "banking77/train.csv"), rest // 2)
    return [*twitter, *bitext, *banking]


def run() -> dict:
    from llmops.runtime import OFFLINE_ENV

    for k, v in OFFLINE_ENV.items():
        os.environ.setdefault(k, v)
    from llmops.config import CleanParams, RedactParams
    from llmops.data.clean import clean_conversations
    from llmops.pii.boundary import redact_batch
    from llmops.pii.redact import Redactor

    n = int(os.environ.get("PRIVACY_BENCH_CONVERSATIONS", "10000"))
    convs, _ = clean_conversations(build_conversations(n), CleanParams())
    cfg = RedactParams()
    redactor = Redactor(cfg, id_key=b"bench")
    redactor.analyzer.warm_up()
    start = time.perf_counter()
    result = redact_batch(convs, [], [], redactor)
    seconds = time.perf_counter() - start
    report = result.report()
    texts = sum(len(c.turns) for c in convs)
    c = report["conversations"]
    header = f"{'conversations':<16}{'texts':>7}{'held':>6}{'residual share':>16}{'max share':>11}{'gate':>6}"
    print(f"{header}{'seconds':>9}{'conv/s':>8}")
    print(
        f"{len(convs):<16}{texts:>7}{c['quarantined']:>6}{result.leak_share:>16.4%}{cfg.max_leak_share:>11.2%}"
        f"{'pass' if report['passed'] else 'FAIL':>6}{seconds:>9.1f}{len(convs) / seconds:>8.1f}"
    )
    print(f"residual types: {c['residual_types'] or 'none'}; entities redacted: {redactor.stats.as_dict()['entities']}")
    if hasattr(redactor.analyzer, "close"):
        redactor.analyzer.close()
    return {
        "conversations": len(convs),
        "texts": texts,
        "quarantined": c["quarantined"],
        "residual_share": result.leak_share,
        "residual_types": c["residual_types"],
        "max_leak_share": cfg.max_leak_share,
        "gate_passed": report["passed"],
        "seconds": round(seconds, 1),
        "conversations_per_s": round(len(convs) / seconds, 1),
        "ids_hashed": redactor.ids_hashed,
        "metadata_keys_dropped": redactor.metadata_dropped,
    }


if __name__ == "__main__":
    run()
