"""Microsoft Presidio's analyzer on the corpus that `examples/speed.rs --write-corpus DIR`
wrote, for comparison with the Portcullis masking engine: MB/s over the first --mb megabytes
of the dense corpus cut into 4 KB chunks (as the engine's "dense, 4 KB chunks" row), and
precision and recall on the entities both know.

    python bench/masking/presidio.py DIR [--mb 1]

Prints one Markdown row (engine | input | MB/s | precision | recall) and writes
DIR/presidio.json. Presidio runs its predefined pattern recognizers only: the no-op NLP
engine loads no spaCy model, so nothing is downloaded and the names and places a model
would find are out of the comparison (the corpus labels none).
"""

import argparse
import json
import os
import sys
import time

# The e-mail recognizer's tldextract would fetch the public suffix list from GitHub on first
# use; an empty URL list makes it use the snapshot it ships with (no network).
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

from importlib.metadata import version  # noqa: E402

from presidio_analyzer import AnalyzerEngine  # noqa: E402
from presidio_analyzer.nlp_engine import NoOpNlpEngine  # noqa: E402

CHUNK = 4096

# Presidio's entity names for ours; IP_ADDRESS covers both address families.
ENTITIES = {
    "EMAIL_ADDRESS": {"EMAIL"},
    "CREDIT_CARD": {"CREDIT_CARD"},
    "IBAN_CODE": {"IBAN"},
    "US_SSN": {"US_SSN"},
    "PHONE_NUMBER": {"PHONE"},
    "IP_ADDRESS": {"IPV4", "IPV6"},
    "UK_NINO": {"UK_NINO"},
    "US_PASSPORT": {"US_PASSPORT"},
    "MAC_ADDRESS": {"MAC_ADDRESS"},
}
OURS = set().union(*ENTITIES.values())


def load(path, limit):
    """The corpus pieces up to `limit` bytes of text: (text, labels with char offsets)."""
    pieces, size = [], 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            piece = json.loads(line)
            text = piece["text"]
            raw = text.encode("utf-8")

            def char(at):
                return len(raw[:at].decode("utf-8"))

            labels = [
                (label["entity"], char(label["start"]), char(label["end"]))
                for label in piece["labels"]
            ]
            pieces.append((text, labels))
            size += len(raw)
            if size >= limit:
                break
    return pieces, size


def chunks(pieces):
    """The sample's text cut into CHUNK-byte pieces at character boundaries."""
    raw = "".join(text for text, _ in pieces).encode("utf-8")
    out, start = [], 0
    while start < len(raw):
        end = min(start + CHUNK, len(raw))
        # Back off from continuation bytes (0b10xxxxxx) to a character boundary.
        while end < len(raw) and raw[end] & 0xC0 == 0x80:
            end -= 1
        out.append(raw[start:end].decode("utf-8"))
        start = end
    return out


def score(analyzer, pieces):
    """Precision and recall over the entities both engines know, piece by piece."""
    true_found = found = recalled = labelled = 0
    for text, labels in pieces:
        results = [
            r
            for r in analyzer.analyze(text=text, language="en")
            if r.entity_type in ENTITIES
        ]
        ours = [label for label in labels if label[0] in OURS]
        labelled += len(ours)
        for entity, start, end in ours:
            if any(
                entity in ENTITIES[r.entity_type] and r.start < end and start < r.end
                for r in results
            ):
                recalled += 1
        for r in results:
            found += 1
            if any(
                entity in ENTITIES[r.entity_type] and r.start < end and start < r.end
                for entity, start, end in ours
            ):
                true_found += 1
    return true_found / max(found, 1), recalled / max(labelled, 1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dir")
    parser.add_argument("--mb", type=float, default=1.0)
    args = parser.parse_args()

    pieces, size = load(os.path.join(args.dir, "dense.jsonl"), int(args.mb * 1024 * 1024))
    nlp = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}])
    analyzer = AnalyzerEngine(nlp_engine=nlp, supported_languages=["en"])

    work = chunks(pieces)
    analyzer.analyze(text=work[0], language="en")  # warm-up: compiles the patterns
    start = time.perf_counter()
    for chunk in work:
        analyzer.analyze(text=chunk, language="en")
    elapsed = time.perf_counter() - start
    mb_s = size / elapsed / (1024 * 1024)
    precision, recall = score(analyzer, pieces)

    name = f"Presidio analyzer {version('presidio-analyzer')} (pattern recognizers, no NLP model)"
    print(
        f"| {name} | dense, 4 KB chunks ({size / 1048576:.1f} MB) | {mb_s:.3f} "
        f"| {precision:.1%} | {recall:.1%} |"
    )
    with open(os.path.join(args.dir, "presidio.json"), "w", encoding="utf-8") as f:
        json.dump(
            {"mb_s": mb_s, "bytes": size, "precision": precision, "recall": recall}, f
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
