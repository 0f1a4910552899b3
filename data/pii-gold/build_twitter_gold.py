"""Build the informal-chat gold set from the twitter-customer-care-cdp dev split (real support tweets).

Every message of ``dev.json`` (client and agent turns, file order, 686 posts) is one gold document.
Person names and locations were annotated by hand (:data:`ANNOTATIONS`: post index -> (type, surface text,
occurrence)); Twitter handles, URLs and e-mail addresses are marked by regex as SOCIAL_HANDLE / URL /
EMAIL_ADDRESS so the scorer can ignore (handles, URLs) or count (e-mails) them. Posts of even-numbered
conversations form the tune part, odd-numbered ones the held-back test part. See README.md.

Run from the repository root: ``python data/pii-gold/build_twitter_gold.py ../shared/data``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

P, L, E, T = "PERSON", "LOCATION", "EMAIL_ADDRESS", "PHONE_NUMBER"
# post index -> [(entity type, surface text, which occurrence in the post (0 = first))]
ANNOTATIONS: dict[int, list[tuple[str, str, int]]] = {
    28: [(P, "Justin", 0)],
    30: [(P, "Justin", 0), (P, "Shivangi", 0)],
    33: [(P, "Shivangi", 0)],
    35: [(P, "Shivangi", 0)],
    45: [(L, "russia", 0)],
    59: [(L, "Delhi", 0)],
    65: [(P, "Bylli", 0)],
    95: [(L, "Midway", 0)],
    118: [(P, "BeetleJuice", 0)],
    138: [(L, "South Africa", 0)],
    161: [(P, "Randall", 0)],
    202: [(L, "Massachusetts", 0)],
    206: [(L, "Italy", 0)],
    252: [(L, "Washington", 0)],
    257: [(P, "Mathew", 0), (P, "Kartika", 0)],
    260: [(P, "Jonathan Groff", 0), (P, "Jonathan Groff", 1)],
    268: [(L, "USA", 0)],
    273: [(P, "Lilian Surubaru", 0)],
    277: [(P, "Lior Navon", 0), (P, "Lior", 1)],
    280: [(P, "Chris", 0)],
    282: [(P, "Isak", 0)],
    288: [(P, "Joe Exotic", 0)],
    323: [(L, "vietnam", 0), (L, "washington dc", 0)],
    330: [(P, "joe", 0), (L, "south korea", 0)],
    337: [(L, "MDW", 0), (L, "MDW", 1)],
    348: [(P, "Morgan", 0), (P, "Caroline", 0)],
    350: [(P, "Morgan", 0), (P, "Jen", 0)],
    352: [(P, "Morgan", 0)],
    379: [(P, "Cripps", 0)],
    406: [(L, "South Korea", 0)],
    410: [(L, "México", 0)],
    425: [(P, "Justin", 0), (P, "Sahil", 0)],
    426: [(P, "Sahil", 0)],
    442: [(L, "States", 0)],
    443: [(P, "Tucker", 0)],
    475: [(P, "Kartika", 0)],
    477: [(P, "Kartika", 0)],
    479: [(P, "Kartika", 0)],
    483: [(P, "Kartika", 0)],
    485: [(P, "NKush", 0)],
    487: [(P, "NKush", 0)],
    501: [(L, "atlanta", 0)],
    548: [(P, "Alvina Lam", 0)],
    552: [(L, "DR", 0), (L, "New York", 0), (L, "New Jersey", 0), (L, "CT", 0), (L, "DR", 1)],
    571: [(L, "Texas", 0)],
    616: [(P, "Rjay", 0)],
    625: [(P, "Shie", 0)],
    640: [(L, "U.S.", 0)],
    653: [(T, "01120738976", 0)],
    661: [(P, "Kasidy", 0)],
    671: [(L, "Georgia", 0)],
    685: [(L, "San Antonio", 0)],
}
_AUTO = (
    ("SOCIAL_HANDLE", re.compile(r"(?<![\w@])@\w{2,}")),
    ("URL", re.compile(r"https?:\s?//\S+|\b\w[\w-]*\[\.\]\w+")),
    (E, re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")),
)


def _find(text: str, surface: str, occurrence: int) -> int:
    start = -1
    for _ in range(occurrence + 1):
        start = text.find(surface, start + 1)
        if start < 0:
            raise ValueError(f"{surface!r} (occurrence {occurrence}) not in {text!r}")
    return start


def build(shared: Path, out: Path) -> dict[str, int]:
    convs = json.loads((shared / "twitter-customer-care-cdp/dev.json").read_text(encoding="utf-8"))
    posts = [(ci, m["message"]) for ci, c in enumerate(convs) for m in c["dialogContent"]]
    parts: dict[str, list[str]] = {"tune": [], "test": []}
    for i, (ci, text) in enumerate(posts):
        spans = []
        for kind, surface, occ in ANNOTATIONS.get(i, []):
            start = _find(text, surface, occ)
            spans.append((kind, start, start + len(surface)))
        for kind, pattern in _AUTO:
            for m in pattern.finditer(text):
                if not any(s < m.end() and m.start() < e for _, s, e in spans):
                    spans.append((kind, m.start(), m.end()))
        gold = [{"entity_type": k, "start_position": s, "end_position": e} for k, s, e in sorted(spans, key=lambda x: x[1])]
        parts["tune" if ci % 2 == 0 else "test"].append(json.dumps({"full_text": text, "spans": gold}, ensure_ascii=False))
    for name, lines in parts.items():
        (out / f"twitter-cc-{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {name: len(lines) for name, lines in parts.items()}


if __name__ == "__main__":
    print(build(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data"), Path(__file__).parent))
