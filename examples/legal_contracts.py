"""Legal contracts: a glossary of defined terms plus the phrases contracts repeat, as single tokens.

    python examples/legal_contracts.py                         # embedded smollm2-135m, corpora/legal
    python examples/legal_contracts.py --model ./my-model --corpus contracts/ --glossary terms.txt

A legal team often has a glossary ("Confidential Information", "Effective Date", "Licensee"). This
example adds the glossary as tokens (a terms file, one term per line), then the analyzer's most
domain-specific phrases, scored against general English (--reference), and shows how a contract
sentence is tokenized before and after.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import vocabx
from vocabx.extend import read_terms

ROOT = Path(__file__).resolve().parents[1]
GLOSSARY = ["Confidential Information", "Effective Date", "Licensee", "Licensor", "Distributor", "indemnification", "non-exclusive"]
SENTENCE = " Notwithstanding the foregoing, the Licensee shall indemnify the Distributor in accordance with this Agreement."


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--corpus", default=str(ROOT / "corpora" / "legal"))
    parser.add_argument("--reference", default=str(ROOT / "corpora" / "general"))
    parser.add_argument("--glossary", help="terms file, one term per line (default: a built-in list)")
    parser.add_argument("--top", type=int, default=500)
    parser.add_argument("--out", default="runs/legal-contracts")
    args = parser.parse_args(argv)

    tokenizer = vocabx.load_tokenizer(args.model)
    terms, dropped = read_terms(args.glossary) if args.glossary else (GLOSSARY, [])
    glossary, more = vocabx.tokens_from_terms(terms, tokenizer)
    dropped += more

    result = vocabx.analyze(vocabx.read_corpus(args.corpus), tokenizer, reference=vocabx.read_corpus(args.reference))
    chosen = {t.token for t in glossary}
    analyzed = [t for t in vocabx.tokens_from_report(result.report, args.top) if t.token not in chosen]

    ext = vocabx.extend(args.model, glossary + analyzed, tokenizer=tokenizer)
    vocabx.save_extension(ext, Path(args.out), overwrite=True)
    before, after = tokenizer.tokenize(SENTENCE), ext.tokenizer.tokenize(SENTENCE)
    print(f"before ({len(before)} tokens): {before}")
    print(f"after  ({len(after)} tokens): {after}")
    print(f"added {len(ext.added)} tokens ({len(glossary)} from the glossary); dropped {len(ext.dropped) + len(dropped)}")
    return {"before": len(before), "after": len(after), "added": len(ext.added)}


if __name__ == "__main__":
    main()
