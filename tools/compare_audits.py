"""Compares two audits of the same images (a Beam audit against the in-process one): the
flags, and the largest differences of region shares and marker scores. Prints JSON.

    python tools/compare_audits.py out/audit_local/audit.json out/audit_beam/audit.json
"""

import argparse
import json

from covgan.evaluation.audit_compare import compare_audits


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", help="an audit.json")
    parser.add_argument("b", help="another audit.json of the same images")
    args = parser.parse_args()
    with open(args.a) as a, open(args.b) as b:
        print(json.dumps(compare_audits(json.load(a), json.load(b)), indent=2))


if __name__ == "__main__":
    main()
